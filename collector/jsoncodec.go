package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// stdReason says why encoding/json rejects b, to follow "value" or
// "CloudEvents binary data" in a quarantine reason. The decoder's own
// parser (internal/jsondoc) decides what is valid, exactly as encoding/json
// does; encoding/json words the reason, so reasons stay what they were.
func stdReason(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("is not valid JSON: %v", err)
	}
	return fmt.Errorf("has trailing data after the JSON document")
}
