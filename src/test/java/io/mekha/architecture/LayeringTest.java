package io.mekha.architecture;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Mekha's layers, pinned: no package depends on another that depends back on it, and nothing at the bottom (the QMP
 * client, the shared values, the stored format, the CR model, the agent's wire model) imports the node agent; the
 * coordinator and the operator reach agents only through the agent's wire model.
 */
@Tag("fast")
class LayeringTest {
    private static JavaClasses mekha;

    @BeforeAll
    static void load() {
        mekha = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages("io.mekha");
    }

    @Test
    void noPackageCycles() {
        slices().matching("io.mekha.(**)").should().beFreeOfCycles().check(mekha);
    }

    @Test
    void theQmpClientKnowsNothingOfMekha() {
        noClasses().that().resideInAPackage("io.mekha.qmp..").should().dependOnClassesThat()
                .resideOutsideOfPackages("io.mekha.qmp..", "java..", "com.fasterxml..", "org.jboss.logging..").check(mekha);
    }

    @Test
    void sharedValuesStoredFormatAndCrModelImportNothingFromTheAgentOrAbove() {
        noClasses().that().resideInAnyPackage("io.mekha.model..", "io.mekha.storage..", "io.mekha.api..")
                .should().dependOnClassesThat().resideInAnyPackage("io.mekha.agent..", "io.mekha.protocol..", "io.mekha.operator..",
                        "io.mekha.local..")
                .check(mekha);
        noClasses().that().resideInAPackage("io.mekha.model..").should().dependOnClassesThat()
                .resideInAnyPackage("io.mekha.storage..", "io.mekha.api..").check(mekha);
    }

    @Test
    void theAgentsWireModelImportsNoAgentInternals() {
        noClasses().that().resideInAPackage("io.mekha.agent.api..").should().dependOnClassesThat(agentInternals()).check(mekha);
    }

    @Test
    void theCoordinatorAndTheOperatorReachAgentsOnlyThroughTheirWireModel() {
        noClasses().that().resideInAnyPackage("io.mekha.protocol..", "io.mekha.operator..").should().dependOnClassesThat(agentInternals())
                .check(mekha);
    }

    /** The node agent beyond its wire model ({@code io.mekha.agent.api}). */
    private static com.tngtech.archunit.base.DescribedPredicate<com.tngtech.archunit.core.domain.JavaClass> agentInternals() {
        return resideInAPackage("io.mekha.agent..").and(not(resideInAPackage("io.mekha.agent.api.."))).as("the agent's internals");
    }

    @Test
    void theNodeAgentKnowsNoCoordinatorOperatorOrLocalMode() {
        noClasses().that().resideInAPackage("io.mekha.agent..").should().dependOnClassesThat()
                .resideInAnyPackage("io.mekha.protocol..", "io.mekha.operator..", "io.mekha.local..", "io.mekha.api..").check(mekha);
    }

    @Test
    void theCoordinatorKnowsNoKubernetes() {
        noClasses().that().resideInAPackage("io.mekha.protocol..").should().dependOnClassesThat()
                .resideInAnyPackage("io.mekha.operator..", "io.mekha.api..", "io.fabric8..", "io.javaoperatorsdk..").check(mekha);
    }
}
