package grafanasql

import (
	"fmt"
	"regexp"
	"strings"
)

// AllValue is the value Grafana stores for a variable whose "All" option is selected.
const AllValue = "$__all"

// Variable is a dashboard variable as the template service sees it at query time.
type Variable struct {
	// Current is the selected value: one element for a single-value variable
	// or a text box, one or more for a multi-value one, [AllValue] for "All".
	Current []string
	// Multi marks a multi-value variable (its value is an array even when
	// one option is selected).
	Multi bool
	// Options are the variable's option values, without "All": what "All"
	// expands to when the variable has no custom all value.
	Options []string
}

// isAll reports whether "All" is selected.
func (v Variable) isAll() bool { return len(v.Current) > 0 && v.Current[0] == AllValue }

// valueString is `current.value.toString()` in JavaScript: array elements
// joined with commas.
func (v Variable) valueString() string { return strings.Join(v.Current, ",") }

// value is what the template service formats: the option values for "All",
// an array for a multi-value variable, a plain string otherwise.
func (v Variable) value() (vals []string, isArray bool) {
	if v.isAll() {
		return v.Options, true
	}
	if v.Multi || len(v.Current) > 1 {
		return v.Current, true
	}
	if len(v.Current) == 0 {
		return []string{""}, false
	}
	return v.Current[:1], false
}

// Variables maps variable names to their state.
type Variables map[string]Variable

const conditionalAllMacro = "$__conditionalAll("

// conditionalAllVar finds the variable named in the macro's second argument,
// as /(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+/ does in the plugin.
var conditionalAllVar = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// ApplyConditionalAll expands every $__conditionalAll(condition, $var), last
// first, as the plugin's frontend does before variables are replaced.
func ApplyConditionalAll(raw string, vars Variables) string {
	if raw == "" {
		return raw
	}
	idx := strings.LastIndex(raw, conditionalAllMacro)
	for idx != -1 {
		params := macroArgs(raw, idx+len(conditionalAllMacro)-1)
		if len(params) != 2 {
			return raw
		}
		phrase := params[0]
		if m := conditionalAllVar.FindStringSubmatch(strings.TrimSpace(params[1])); m != nil {
			name := m[1] + m[2]
			if v, ok := vars[name]; ok {
				if s := v.valueString(); s == "" || s == AllValue {
					phrase = "1=1"
				}
			}
		}
		search := conditionalAllMacro + params[0] + "," + params[1] + ")"
		raw = jsReplaceFirst(raw, search, phrase)
		idx = strings.LastIndex(raw, conditionalAllMacro)
	}
	return raw
}

// macroArgs is the plugin's getMacroArgs: the top-level, comma-separated
// arguments of the parenthesis at argsIndex, or nil when it never closes.
func macroArgs(query string, argsIndex int) []string {
	var args []string
	brackets := 0
	lastArgEnd := 1
	s := query[argsIndex:]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '(' && c != ')' && c != ',' {
			continue
		}
		switch c {
		case '(':
			brackets++
		case ')':
			brackets--
		}
		if c == ',' && brackets == 1 {
			args = append(args, s[lastArgEnd:i])
			lastArgEnd = i + 1
		}
		if brackets == 0 {
			return append(args, s[lastArgEnd:i])
		}
	}
	return nil
}

// jsReplaceFirst is String.prototype.replace with a string pattern: the
// first occurrence only, and $$, $&, $` and $' in the replacement expanded.
func jsReplaceFirst(s, search, repl string) string {
	i := strings.Index(s, search)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for j := 0; j < len(repl); j++ {
		if repl[j] != '$' || j+1 == len(repl) {
			b.WriteByte(repl[j])
			continue
		}
		switch repl[j+1] {
		case '$':
			b.WriteByte('$')
		case '&':
			b.WriteString(search)
		case '`':
			b.WriteString(s[:i])
		case '\'':
			b.WriteString(s[i+len(search):])
		default:
			b.WriteByte('$')
			continue
		}
		j++
	}
	return s[:i] + b.String() + s[i+len(search):]
}

// variableRegex is Grafana's template variable syntax: $var, [[var:fmt]],
// ${var.field:fmt}.
var variableRegex = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}`)

// ReplaceVariables is the template service's replace with the ClickHouse
// plugin's format function. Unknown variables are left as they are, like
// Grafana does (so $__timeFilter and the other macros pass through).
func ReplaceVariables(raw string, vars Variables) (string, error) {
	var err error
	out := variableRegex.ReplaceAllStringFunc(raw, func(match string) string {
		m := variableRegex.FindStringSubmatch(match)
		name := m[1] + m[2] + m[4]
		format := m[3] + m[6]
		v, ok := vars[name]
		if !ok {
			return match
		}
		vals, isArray := v.value()
		s, ferr := formatValue(format, vals, isArray)
		if ferr != nil && err == nil {
			err = fmt.Errorf("variable %s: %w", name, ferr)
		}
		return s
	})
	return out, err
}

// formatValue renders a variable's value. No format means the plugin's own
// format function: an array becomes 'a','b' (values not escaped), a single
// value is inserted raw. Its quoting is Grafana's, imitated (see the
// package doc), not the dashboards' sqlString.
func formatValue(format string, vals []string, isArray bool) (string, error) {
	switch format {
	case "":
		if isArray {
			return "'" + strings.Join(vals, "','") + "'", nil
		}
		return vals[0], nil
	case "raw":
		return strings.Join(vals, ","), nil
	case "csv":
		return strings.Join(vals, ","), nil
	case "sqlstring":
		// Grafana's sqlStringFormatter: ' doubled, " escaped with a backslash.
		q := make([]string, len(vals))
		for i, s := range vals {
			q[i] = "'" + sqlEscaper.Replace(s) + "'"
		}
		return strings.Join(q, ","), nil
	case "singlequote":
		q := make([]string, len(vals))
		for i, s := range vals {
			q[i] = "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
		}
		return strings.Join(q, ","), nil
	}
	return "", fmt.Errorf("format %q is not implemented here", format)
}

var sqlEscaper = strings.NewReplacer(`'`, `''`, `"`, `\"`)
