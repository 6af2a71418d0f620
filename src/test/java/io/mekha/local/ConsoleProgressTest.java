package io.mekha.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Where a workload had got to when the cut fell, read from its console: the cut can fall anywhere
 * in a line, and the restored VM prints the rest of it, which alone no longer names the step.
 */
class ConsoleProgressTest {
    static final String LINE_54 = "RING step=54 node=2 sum=00000000deadbeef\r\n";
    static final String LINE_55 = "RING step=55 node=2 sum=0123456789abcdef\r\n";

    @Test
    void aCutAtEveryCharacterOfALineGivesTheStepTheRestoredRemainderBelongsTo() {
        String before = "booted\r\n" + LINE_54;
        for (int cut = 0; cut <= LINE_55.length(); cut++) {
            String atCut = before + LINE_55.substring(0, cut);
            String restoredRest = LINE_55.substring(cut) + "RING step=56 node=2 sum=1111111111111111\r\n";
            long reached = RingReference.lastStepReached(atCut);
            long firstWholeAfter = RingReference.printed(List.of(restoredRest.split("\n")), 2).firstKey();
            // the restored VM goes on from the cut: its first whole line is the step reached, or the one after it
            assertThat(firstWholeAfter).as("cut after %d characters of step 55's line", cut)
                    .isBetween(reached, reached + 1);
            assertThat(reached).as("cut after %d characters", cut).isEqualTo(cut == 0 ? 54 : 55);
        }
    }

    @Test
    void aLongerNumberCutShortIsNotReadAsASmallerStep() {
        String atCut = "RING step=99 node=0 sum=0000000000000001\r\nRING step=1";
        assertThat(RingReference.lastStepReached(atCut)).isEqualTo(100);
    }

    @Test
    void otherTextAtTheEndDoesNotCount() {
        assertThat(RingReference.lastStepReached(LINE_54 + "[   12.5] clocksource: tsc unsta")).isEqualTo(54);
        assertThat(RingReference.lastStepReached("")).isZero();
        assertThat(DirtierLog.lastRoundReached("DIRTIER round=7 hash=0011223344556677\nDIRTIER rou")).isEqualTo(8);
    }
}
