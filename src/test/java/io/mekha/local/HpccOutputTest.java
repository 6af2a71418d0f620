package io.mekha.local;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Reading HPCC's own verification: lines as hpcc 1.5.0 writes them in hpccoutf.txt. */
@Tag("fast")
class HpccOutputTest {
    private static final String PASSING = String.join("\n",
            "Begin of MPIRandomAccess section.",
            "Found 0 errors in 262144 locations (passed).",
            "Node(s) with error 0",
            "End of MPIRandomAccess section.",
            "WALL   300   300  32  32   1   3     0.09 PASSED    0.008  0.00",
            "    5 tests completed and passed residual checks.",
            "    0 tests completed and failed residual checks.",
            "Solution Validates: avg error less than 1.000000e-13 on all three arrays",
            "||Ax-b||_oo/(eps*(||A||_oo*||x||_oo+||b||_oo)*N)=        0.0059210 ...... PASSED",
            "Begin of Summary section.",
            "Success=1",
            "End of Summary section.",
            "End of HPC Challenge tests.");

    @Test
    void aFinishedRunThatPassedEverythingHasNoProblems() {
        assertThat(HpccOutput.problems(PASSING)).isEmpty();
        assertThat(HpccOutput.summary(PASSING)).isEqualTo("2 HPL/PTRANS checks PASSED, 1 RandomAccess verifications passed, STREAM validates, Success=1");
    }

    @Test
    void everyFailedCheckIsNamed() {
        String failing = PASSING.replace("0.0059210 ...... PASSED", "17.5 ...... FAILED")
                .replace("Found 0 errors in 262144 locations (passed)", "Found 912 errors in 262144 locations (failed)")
                .replace("    0 tests completed and failed", "    1 tests completed and failed")
                .replace("Node(s) with error 0", "Node(s) with error 1")
                .replace("Success=1", "Success=0");
        assertThat(HpccOutput.problems(failing)).hasSize(5)
                .anyMatch(p -> p.contains("FAILED")).anyMatch(p -> p.contains("RandomAccess: Found 912 errors"))
                .anyMatch(p -> p.contains("1 tests completed and failed")).anyMatch(p -> p.contains("Node(s) with error 1"))
                .anyMatch(p -> p.contains("Success=1"));
    }

    @Test
    void anUnfinishedRunIsNotAPass() {
        String cut = PASSING.substring(0, PASSING.indexOf("Begin of Summary"));
        assertThat(HpccOutput.problems(cut)).contains("HPCC did not finish (no 'End of HPC Challenge tests.')");
    }
}
