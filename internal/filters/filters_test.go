package filters

import "testing"

func TestParseBothForms(t *testing.T) {
	for _, in := range []string{`{"status":{"exited":true}}`, `{"status":["exited"]}`} {
		a, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		if !a.Match("status", "exited") || a.Match("status", "running") {
			t.Errorf("Parse(%s) = %v", in, a)
		}
	}
	if _, err := Parse(`{bad`); err == nil {
		t.Error("bad json accepted")
	}
}

func TestMatchers(t *testing.T) {
	a := Args{"label": {"a", "b=2"}, "name": {"web*"}, "id": {"abc"}}
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"labels ok", a.MatchLabels("label", map[string]string{"a": "", "b": "2"}), true},
		{"label value differs", a.MatchLabels("label", map[string]string{"a": "", "b": "3"}), false},
		{"label missing", a.MatchLabels("label", map[string]string{"b": "2"}), false},
		{"glob", a.MatchGlob("name", "web1"), true},
		{"glob miss", a.MatchGlob("name", "db"), false},
		{"prefix", a.MatchPrefix("id", "abcdef"), true},
		{"absent term", a.Match("status", "x"), true},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v want %v", c.name, c.got, c.want)
		}
	}
	if err := a.Validate("label", "name"); err == nil {
		t.Error("Validate accepted unknown term id")
	}
}
