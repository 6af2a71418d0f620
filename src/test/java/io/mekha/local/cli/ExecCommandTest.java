package io.mekha.local.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("fast")
class ExecCommandTest {
    @Test
    void oneWordIsACommandLineAndSeveralAreQuotedWordByWord() {
        assertThat(ExecCommand.shellLine(List.of("cd /root && ls"))).isEqualTo("cd /root && ls");
        assertThat(ExecCommand.shellLine(List.of("grep", "^Begin of", "/root/it's.txt")))
                .isEqualTo("'grep' '^Begin of' '/root/it'\\''s.txt'");
    }
}
