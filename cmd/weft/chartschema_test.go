package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/weft-sh/weft/consistency"
)

// chartSchema is the Helm chart's values schema; its config property is
// generated from Config by TestChartConfigSchema.
var chartSchema = filepath.Join("..", "..", "charts", "weft", "values.schema.json")

// TestChartConfigSchema checks that the chart's values schema describes
// exactly the config weft reads: properties.config of
// charts/weft/values.schema.json is generated here from Config's yaml
// tags, so a key added to weft cannot be missing from the chart, nor a key
// removed from weft still be accepted by it. The rest of the file (the
// chart's own values) is written by hand and only kept in canonical form.
// -update rewrites the file (the package's -update flag, updateTrace).
func TestChartConfigSchema(t *testing.T) {
	gen, err := configSchema(reflect.TypeOf(Config{}), "config")
	if err != nil {
		t.Fatal(err)
	}
	gen["description"] = "weft's config file (weft.example.yaml), rendered into the ConfigMap weft reads. Generated from weft's Go config types (cmd/weft/chartschema_test.go)."
	b, err := os.ReadFile(chartSchema)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", chartSchema, err)
	}
	props, ok := doc["properties"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no properties", chartSchema)
	}
	props["config"] = gen
	want, err := canonicalJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	if *updateTrace {
		if err := os.WriteFile(chartSchema, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from the schema generated from Config (or is not in canonical form), first at %s; run: go test ./cmd/weft -run TestChartConfigSchema -update", chartSchema, firstDiff(b, want))
	}
}

// firstDiff names the first line where have and want differ.
func firstDiff(have, want []byte) string {
	h, w := bytes.Split(have, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(h) && i < len(w); i++ {
		if !bytes.Equal(h[i], w[i]) {
			return fmt.Sprintf("line %d: have %q, want %q", i+1, bytes.TrimSpace(h[i]), bytes.TrimSpace(w[i]))
		}
	}
	return fmt.Sprintf("line %d (lengths differ)", min(len(h), len(w))+1)
}

// canonicalJSON is v indented by two spaces, keys sorted, no HTML escaping,
// with a final newline.
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// durationPattern is what time.ParseDuration accepts, as yaml.v3 reads a
// time.Duration (a string; a bare number is refused).
const durationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// configSchema is the JSON schema of the YAML weft decodes into t: every
// struct closed (additionalProperties false, as loadConfig refuses unknown
// keys), every scalar typed.
func configSchema(t reflect.Type, path string) (map[string]any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return map[string]any{"type": "string", "pattern": durationPattern}, nil
	case reflect.TypeOf(consistency.Conflict{}):
		// Conflict.UnmarshalYAML reads a pair of event types or a mapping.
		obj, err := structSchema(t, path)
		if err != nil {
			return nil, err
		}
		pair := map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 2, "maxItems": 2}
		return map[string]any{"oneOf": []any{pair, obj}}, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return structSchema(t, path)
	case reflect.String:
		return map[string]any{"type": "string"}, nil
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.Slice:
		items, err := configSchema(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map key %s is not a string", path, t.Key())
		}
		vals, err := configSchema(t.Elem(), path+".*")
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "object", "additionalProperties": vals}, nil
	}
	return nil, fmt.Errorf("%s: no schema for %s (teach configSchema this type)", path, t)
}

// structSchema is a closed object of t's YAML keys, inlined structs' keys
// included (yamlFields, as loadConfig reads them).
func structSchema(t reflect.Type, path string) (map[string]any, error) {
	if _, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML"); ok && t != reflect.TypeOf(consistency.Conflict{}) {
		return nil, fmt.Errorf("%s: %s decodes itself (UnmarshalYAML): teach configSchema its forms", path, t)
	}
	fields := yamlFields(t)
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	props := map[string]any{}
	for _, name := range names {
		s, err := configSchema(fields[name], join(path, name))
		if err != nil {
			return nil, err
		}
		props[name] = s
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}, nil
}
