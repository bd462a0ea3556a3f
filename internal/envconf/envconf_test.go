package envconf

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

type inner struct {
	Name  string   `envconfig:"NAME" default:"in"`
	Hosts []string `envconfig:"HOSTS" default:"a:1,b:2"`
}

type Embedded struct {
	Port int `envconfig:"PORT" default:"8080"`
}

// every kind of field the configurations use, nested the ways they nest
type spec struct {
	Inner inner `envconfig:"INNER"`
	Embedded
	Str      string            `envconfig:"STR" default:"s"`
	Empty    string            `envconfig:"EMPTY" default:""`
	Flag     bool              `envconfig:"FLAG" default:"true"`
	Int      int               `envconfig:"INT" default:"0x10"`
	Int16    int16             `envconfig:"INT16" default:"3"`
	Int32    int32             `envconfig:"INT32" default:"-7"`
	Int64    int64             `envconfig:"INT64" default:"67108864"`
	Uint     uint64            `envconfig:"UINT" default:"1"`
	Float    float64           `envconfig:"FLOAT" default:"0.25"`
	Wait     time.Duration     `envconfig:"WAIT" default:"1m30s"`
	Tiers    []time.Duration   `envconfig:"TIERS" default:"1m,1h"`
	Tokens   map[string]string `envconfig:"TOKENS"`
	Untagged string            `default:"u"`
	private  int
}

const prefix = "ENVCONFTEST"

// Load gives what envconfig.Process gives, for defaults and for set variables alike, so a program
// that reads the same structs with envconfig sees the same settings.
func TestLoadMatchesEnvconfig(t *testing.T) {
	f := func(env map[string]string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(prefix+"_"+k, v)
		}
		var got, want spec
		if err := Load(prefix, &got); err != nil {
			t.Fatal(err)
		}
		if err := envconfig.Process(prefix, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("env %v:\nLoad    %+v\nProcess %+v", env, got, want)
		}
	}
	f(nil)
	f(map[string]string{"INNER_NAME": "x", "INNER_HOSTS": "h:1", "PORT": "9", "STR": "", "EMPTY": "e", "FLAG": "false",
		"INT": "-12", "INT16": "0", "INT32": "5", "INT64": "1", "UINT": "0o17", "FLOAT": "1e3", "WAIT": "5ms",
		"TIERS": "", "TOKENS": "tok1:t1,tok2:t2", "UNTAGGED": "v"})
	f(map[string]string{"TIERS": "10s", "TOKENS": " "})
}

func TestDefaults(t *testing.T) {
	t.Setenv(prefix+"_STR", "from the environment")
	var got spec
	got.Tokens = map[string]string{"kept": "as it was"}
	Defaults(&got)
	if fresh := Default[spec](); !reflect.DeepEqual(fresh.Inner, got.Inner) || fresh.Tokens != nil {
		t.Errorf("Default: %+v", fresh)
	}
	want := spec{Inner: inner{Name: "in", Hosts: []string{"a:1", "b:2"}}, Embedded: Embedded{Port: 8080}, Str: "s", Flag: true,
		Int: 16, Int16: 3, Int32: -7, Int64: 64 << 20, Uint: 1, Float: 0.25, Wait: 90 * time.Second,
		Tiers: []time.Duration{time.Minute, time.Hour}, Tokens: map[string]string{"kept": "as it was"}, Untagged: "u"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestDefaultsPanicsOnABadDefault(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "WAIT") {
			t.Errorf("recovered %v, want a panic naming WAIT", r)
		}
	}()
	Defaults(&struct {
		Wait time.Duration `envconfig:"WAIT" default:"soon"`
	}{})
}

// envconfig.Process falls back to the bare tag name when the prefixed variable is unset, so the
// shell's $USER would become the ClickHouse user; Load reads the prefixed name only.
func TestLoadReadsOnlyPrefixedNames(t *testing.T) {
	t.Setenv("ENVCONFTEST_BARE", "from the bare name")
	var c struct {
		V string `envconfig:"ENVCONFTEST_BARE" default:"default"`
	}
	if err := Load("TRIBUTARY", &c); err != nil || c.V != "default" {
		t.Errorf("Load: %q, %v; want the default", c.V, err)
	}
	if err := envconfig.Process("TRIBUTARY", &c); err != nil || c.V != "from the bare name" {
		t.Errorf("envconfig.Process: %q, %v; its fallback changed, revise the package doc", c.V, err)
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	f := func(key, value, want string) {
		t.Run(key, func(t *testing.T) {
			t.Setenv(prefix+"_"+key, value)
			var s spec
			err := Load(prefix, &s)
			if err == nil || !strings.Contains(err.Error(), prefix+"_"+key) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s=%q: %v, want an error naming it and %q", key, value, err, want)
			}
		})
	}
	f("WAIT", "soon", "invalid duration")
	f("INT16", "70000", "out of range")
	f("TOKENS", "a:b:c", "want key:value")
	f("FLAG", "", "invalid syntax")
}

func TestVars(t *testing.T) {
	vars, err := Vars("P", &spec{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range vars {
		keys = append(keys, v.Key+"="+v.Default)
	}
	want := "P_INNER_NAME=in P_INNER_HOSTS=a:1,b:2 P_PORT=8080 P_STR=s P_EMPTY= P_FLAG=true P_INT=0x10 P_INT16=3 P_INT32=-7 " +
		"P_INT64=67108864 P_UINT=1 P_FLOAT=0.25 P_WAIT=1m30s P_TIERS=1m,1h P_TOKENS= P_UNTAGGED=u"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("Vars:\n got %s\nwant %s", got, want)
	}
	if _, err := Vars("P", &struct{ C chan int }{}); err == nil || !strings.Contains(err.Error(), "P_C") {
		t.Errorf("a chan field: %v, want an error naming P_C", err)
	}
}
