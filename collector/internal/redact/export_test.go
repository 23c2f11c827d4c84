package redact

// InKeys reports whether the keys of r hold key once normalized: what
// SensitiveKey must answer. For the tests of package redact_test.
func InKeys(r *Redactor, key string) bool { return r.keys[normKey(key)] }
