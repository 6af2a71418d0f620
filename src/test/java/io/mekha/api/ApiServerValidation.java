package io.mekha.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import dev.cel.common.CelAbstractSyntaxTree;
import dev.cel.common.CelValidationException;
import dev.cel.common.types.SimpleType;
import dev.cel.compiler.CelCompiler;
import dev.cel.compiler.CelCompilerFactory;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelEvaluationException;
import dev.cel.runtime.CelRuntime;
import dev.cel.runtime.CelRuntimeFactory;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the Kubernetes API server checks when an object of a committed CRD is created or updated,
 * done with real validators because the fabric8 mock server validates nothing: the structural
 * OpenAPI schema (types, required, enums, patterns, bounds) by a JSON-schema validator, unknown
 * fields as {@code kubectl apply}'s strict field validation refuses them, {@code
 * x-kubernetes-list-type: set} and every {@code x-kubernetes-validations} CEL rule by Google's CEL
 * library, transition rules (those naming {@code oldSelf}) only on update, where the old value
 * exists. Not emulated: defaulting before validation, CEL cost limits, Kubernetes' CEL extension
 * functions (the committed rules use standard CEL only, which this compiler would refuse otherwise).
 */
final class ApiServerValidation {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final Set<String> IMPLICIT_ROOT_FIELDS = Set.of("apiVersion", "kind", "metadata");

    private final JsonNode openApi;
    private final Schema structural;
    private final CelCompiler cel = CelCompilerFactory.standardCelCompilerBuilder()
            .setStandardMacros(CelStandardMacro.STANDARD_MACROS)
            .addVar("self", SimpleType.DYN).addVar("oldSelf", SimpleType.DYN).build();
    private final CelRuntime runtime = CelRuntimeFactory.standardCelRuntimeBuilder().build();
    private final Map<String, CelRuntime.Program> programs = new HashMap<>();

    private ApiServerValidation(JsonNode openApi) {
        this.openApi = openApi;
        ObjectNode asJsonSchema = openApi.deepCopy();
        asJsonSchema.put("$schema", SpecificationVersion.DRAFT_4.getDialectId());
        this.structural = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_4).getSchema(asJsonSchema);
    }

    /** The schema of the CRD in {@code file} (its only version). */
    static ApiServerValidation of(Path file) {
        try {
            JsonNode crd = YAML.readTree(file.toFile());
            JsonNode schema = crd.path("spec").path("versions").path(0).path("schema").path("openAPIV3Schema");
            if (schema.isMissingNode()) {
                throw new IllegalArgumentException(file + " has no spec.versions[0].schema.openAPIV3Schema");
            }
            return new ApiServerValidation(schema);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    static JsonNode yaml(String text) {
        try {
            return YAML.readTree(text);
        } catch (IOException e) {
            throw new IllegalArgumentException(e);
        }
    }

    /** The API server's answer to a create: every reason the object is refused (empty: accepted). */
    List<String> create(JsonNode object) {
        return validate(object, null);
    }

    /** The API server's answer to an update from {@code old} to {@code object}. */
    List<String> update(JsonNode old, JsonNode object) {
        return validate(object, old);
    }

    private List<String> validate(JsonNode object, JsonNode old) {
        List<String> errors = new ArrayList<>();
        ObjectNode body = object.deepCopy();
        IMPLICIT_ROOT_FIELDS.forEach(body::remove);
        structural.validate(body).forEach(e -> errors.add(describe(e)));
        walk(openApi, body, old == null ? null : stripped(old), "", errors);
        return errors;
    }

    /** A schema error as the API server words it: the field's path, then what is wrong with it. */
    private static String describe(com.networknt.schema.Error error) {
        StringBuilder path = new StringBuilder();
        for (String part : error.getInstanceLocation().toString().split("/")) {
            if (part.isEmpty() || part.equals("$")) {
                continue;
            }
            if (part.chars().allMatch(Character::isDigit)) {
                path.append('[').append(part).append(']');
            } else {
                path.append(path.length() == 0 ? "" : ".").append(part);
            }
        }
        if ("required".equals(error.getMessageKey())) {
            return (path.length() == 0 ? "" : path + ".") + error.getProperty() + ": Required value";
        }
        String message = error.getMessage();
        int colon = message.indexOf(": ");
        return (path.length() == 0 ? "<root>" : path) + ": Invalid value: " + error.getInstanceNode() + ": " + (colon >= 0 ? message.substring(colon + 2) : message);
    }

    private static JsonNode stripped(JsonNode old) {
        ObjectNode copy = old.deepCopy();
        IMPLICIT_ROOT_FIELDS.forEach(copy::remove);
        return copy;
    }

    private void walk(JsonNode schema, JsonNode value, JsonNode old, String path, List<String> errors) {
        if (value == null || value.isMissingNode() || value.isNull()) {
            return;
        }
        for (JsonNode rule : schema.path("x-kubernetes-validations")) {
            evaluate(rule, value, old, path, errors);
        }
        if (value.isObject()) {
            JsonNode properties = schema.path("properties");
            boolean open = schema.has("additionalProperties") || schema.path("x-kubernetes-preserve-unknown-fields").asBoolean(false);
            for (Iterator<Map.Entry<String, JsonNode>> it = value.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> field = it.next();
                String at = path + "." + field.getKey();
                JsonNode fieldSchema = properties.get(field.getKey());
                if (fieldSchema == null && schema.has("additionalProperties") && schema.get("additionalProperties").isObject()) {
                    fieldSchema = schema.get("additionalProperties");
                }
                if (fieldSchema == null) {
                    if (!open) {
                        errors.add(at.substring(1) + ": unknown field \"" + at.substring(1) + "\"");
                    }
                    continue;
                }
                walk(fieldSchema, field.getValue(), old == null ? null : old.get(field.getKey()), at, errors);
            }
        } else if (value.isArray()) {
            if ("set".equals(schema.path("x-kubernetes-list-type").asText())) {
                Set<JsonNode> seen = new HashSet<>();
                for (JsonNode item : value) {
                    if (!seen.add(item)) {
                        errors.add(path.substring(1) + ": Duplicate value: " + item);
                    }
                }
            }
            for (int i = 0; i < value.size(); i++) {
                // list items are not correlated with the old list (only map-keyed lists are): no oldSelf below
                walk(schema.path("items"), value.get(i), null, path + "[" + i + "]", errors);
            }
        }
    }

    private void evaluate(JsonNode rule, JsonNode value, JsonNode old, String path, List<String> errors) {
        String expression = rule.path("rule").asText();
        boolean transition = expression.contains("oldSelf");
        if (transition && old == null) {
            return;
        }
        Map<String, Object> vars = new LinkedHashMap<>();
        vars.put("self", toCel(value));
        if (transition) {
            vars.put("oldSelf", toCel(old));
        }
        Object result;
        try {
            result = program(expression).eval(vars);
        } catch (CelEvaluationException e) {
            errors.add((path.isEmpty() ? "<root>" : path.substring(1)) + ": rule " + expression + " failed to evaluate: " + e.getMessage());
            return;
        }
        if (!Boolean.TRUE.equals(result)) {
            errors.add((path.isEmpty() ? "<root>" : path.substring(1)) + ": Invalid value: " + rule.path("message").asText(expression));
        }
    }

    private CelRuntime.Program program(String expression) {
        return programs.computeIfAbsent(expression, e -> {
            try {
                CelAbstractSyntaxTree ast = cel.compile(e).getAst();
                return runtime.createProgram(ast);
            } catch (CelValidationException | CelEvaluationException ex) {
                throw new IllegalStateException("CEL rule does not compile: " + e + ": " + ex.getMessage(), ex);
            }
        });
    }

    /** Every CEL rule of the schema compiles (the API server refuses a CRD whose rules do not). */
    List<String> rules() {
        List<String> all = new ArrayList<>();
        collect(openApi, all);
        all.forEach(this::program);
        return all;
    }

    private static void collect(JsonNode schema, List<String> into) {
        schema.path("x-kubernetes-validations").forEach(r -> into.add(r.path("rule").asText()));
        schema.path("properties").forEach(p -> collect(p, into));
        if (schema.has("items")) {
            collect(schema.get("items"), into);
        }
        if (schema.path("additionalProperties").isObject()) {
            collect(schema.get("additionalProperties"), into);
        }
    }

    private static Object toCel(JsonNode node) {
        if (node.isObject()) {
            Map<String, Object> map = new LinkedHashMap<>();
            node.fields().forEachRemaining(f -> map.put(f.getKey(), toCel(f.getValue())));
            return map;
        }
        if (node.isArray()) {
            List<Object> list = new ArrayList<>();
            node.forEach(n -> list.add(toCel(n)));
            return list;
        }
        if (node.isIntegralNumber()) {
            return node.asLong();
        }
        if (node.isNumber()) {
            return node.asDouble();
        }
        if (node.isBoolean()) {
            return node.asBoolean();
        }
        return node.asText();
    }
}
