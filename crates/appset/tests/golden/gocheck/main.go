// Command gocheck runs ../go_templates.yaml against Go's text/template with Sprig, configured as
// Argo CD configures them, and prints every case whose Go result differs from the table's `want`
// or `error` (and then exits 1). scripts/test.sh runs it:
//
//	cd crates/appset/tests/golden/gocheck && go run .
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/gosimple/slug"
	"sigs.k8s.io/yaml"
)

type testCase struct {
	Name     string         `json:"name"`
	Template string         `json:"template"`
	Params   map[string]any `json:"params"`
	Options  []string       `json:"options"`
	Want     *string        `json:"want"`
	Error    string         `json:"error"`
}

// As Argo CD's applicationset/utils: SanitizeName.
func sanitizeName(name string) string {
	invalid := regexp.MustCompile("[^-a-z0-9.]")
	name = strings.ToLower(name)
	name = invalid.ReplaceAllString(name, "-")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.Trim(name, "-.")
}

// As Argo CD's SlugifyName: the name is the last argument.
func slugifyName(args ...any) string {
	maxSize, smart, name := 50, true, ""
	for i, a := range args {
		switch i {
		case len(args) - 1:
			name = a.(string)
		case 0:
			maxSize = a.(int)
		case 1:
			smart = a.(bool)
		}
	}
	slug.EnableSmartTruncate = smart
	slug.MaxLength = maxSize
	return slug.Make(sanitizeName(name))
}

func toYAML(v any) (string, error) {
	data, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}

func fromYAML(s string) (map[string]any, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

func fromYAMLArray(s string) ([]any, error) {
	a := []any{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		return nil, err
	}
	return a, nil
}

func funcs() template.FuncMap {
	m := sprig.GenericFuncMap()
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	m["normalize"] = sanitizeName
	m["slugify"] = slugifyName
	m["toYaml"] = toYAML
	m["fromYaml"] = fromYAML
	m["fromYamlArray"] = fromYAMLArray
	return m
}

func run(c testCase) (out string, class string, msg string) {
	defer func() {
		if r := recover(); r != nil {
			class, msg = "exec", fmt.Sprint(r)
		}
	}()
	t, err := template.New("").Option(c.Options...).Funcs(funcs()).Parse(c.Template)
	if err != nil {
		if strings.Contains(err.Error(), "not defined") && strings.Contains(err.Error(), "function") {
			return "", "unknown_function", err.Error()
		}
		return "", "parse", err.Error()
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, c.Params); err != nil {
		if strings.Contains(err.Error(), "map has no entry for key") || strings.Contains(err.Error(), "no entry for key") {
			return "", "missing_key", err.Error()
		}
		if strings.Contains(err.Error(), "undefined variable") {
			return "", "parse", err.Error()
		}
		return "", "exec", err.Error()
	}
	return buf.String(), "", ""
}

func main() {
	data, err := os.ReadFile("../go_templates.yaml")
	if err != nil {
		panic(err)
	}
	var cases []testCase
	if err := yaml.Unmarshal(data, &cases); err != nil {
		panic(err)
	}
	bad := 0
	for _, c := range cases {
		out, class, msg := run(c)
		switch {
		case c.Want != nil && class == "" && out == *c.Want:
		case c.Want == nil && class == c.Error:
		default:
			bad++
			want := c.Error
			if c.Want != nil {
				want = fmt.Sprintf("%q", *c.Want)
			}
			fmt.Printf("DIFF %s\n  table: %s\n  go:    %q %s %s\n", c.Name, want, out, class, msg)
		}
	}
	fmt.Printf("%d cases, %d differ from Go\n", len(cases), bad)
	if bad > 0 {
		os.Exit(1)
	}
}
