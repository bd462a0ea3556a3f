// Package envconf reads configuration structs by their tags, in envconfig's format: `envconfig:"NAME"`
// names a setting and `default:"..."` gives its default. A setting's variable is the prefix, the
// names of the named struct fields that hold it, and its own name, joined by "_" and upper-cased
// (TRIBUTARY_KAFKA_BROKERS); an embedded struct adds no name. A field without a tag is named by
// its Go name, as envconfig does.
//
// The tags are the one source of defaults: each component's DefaultConfig is Defaults applied to
// its Config, and Load starts from the same tags, so the two cannot disagree. Unlike
// envconfig.Process, Load reads only the prefixed variables: envconfig falls back to the bare tag
// name, so an unset TRIBUTARY_CLICKHOUSE_USER would take the shell's $USER.
package envconf

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Var is one setting of a struct: its variable and its default tag (empty when it has none).
type Var struct {
	Key     string
	Default string
	field   reflect.Value
}

// Defaults sets every field of *spec that has a non-empty default tag to that default, and leaves
// the others as they are. It panics if spec is not a pointer to a struct or a default does not
// parse: both are mistakes in the code, which every DefaultConfig's test catches.
func Defaults(spec any) {
	vars, err := gather("", spec)
	if err == nil {
		for _, v := range vars {
			if v.Default == "" {
				continue
			}
			if err = set(v.field, v.Default); err != nil {
				err = fmt.Errorf("default of %s %q: %w", v.Key, v.Default, err)
				break
			}
		}
	}
	if err != nil {
		panic("envconf: " + err.Error())
	}
}

// Default returns a T with every default tag applied: each component's DefaultConfig.
func Default[T any]() T {
	var c T
	Defaults(&c)
	return c
}

// Load sets each field of *spec from its variable when the variable is set (even to the empty
// string), else from its default tag when it has one; a field with neither keeps its value. The
// error names the variable that did not parse.
func Load(prefix string, spec any) error {
	vars, err := gather(prefix, spec)
	if err != nil {
		return err
	}
	for _, v := range vars {
		value, ok := os.LookupEnv(v.Key)
		if !ok {
			if v.Default == "" {
				continue
			}
			value = v.Default
		}
		if err := set(v.field, value); err != nil {
			return fmt.Errorf("%s=%q: %w", v.Key, value, err)
		}
	}
	return nil
}

// Vars lists the settings of *spec in field order, with prefix.
func Vars(prefix string, spec any) ([]Var, error) {
	return gather(prefix, spec)
}

var durationType = reflect.TypeFor[time.Duration]()

func gather(prefix string, spec any) ([]Var, error) {
	s := reflect.ValueOf(spec)
	if s.Kind() != reflect.Pointer || s.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("envconf: %T is not a pointer to a struct", spec)
	}
	s = s.Elem()
	var vars []Var
	for i := range s.NumField() {
		f, sf := s.Field(i), s.Type().Field(i)
		if !f.CanSet() || sf.Tag.Get("ignored") == "true" {
			continue
		}
		name := sf.Tag.Get("envconfig")
		if name == "" {
			name = sf.Name
		}
		key := strings.ToUpper(name)
		if prefix != "" {
			key = strings.ToUpper(prefix) + "_" + key
		}
		if f.Kind() == reflect.Struct {
			inner := key
			if sf.Anonymous {
				inner = prefix
			}
			more, err := gather(inner, f.Addr().Interface())
			if err != nil {
				return nil, err
			}
			vars = append(vars, more...)
			continue
		}
		if err := supported(f.Type()); err != nil {
			return nil, fmt.Errorf("envconf: %s (%s.%s): %w", key, s.Type(), sf.Name, err)
		}
		vars = append(vars, Var{Key: key, Default: sf.Tag.Get("default"), field: f})
	}
	return vars, nil
}

func supported(t reflect.Type) error {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return nil
	case reflect.Slice:
		return supported(t.Elem())
	case reflect.Map:
		if err := supported(t.Key()); err != nil {
			return err
		}
		return supported(t.Elem())
	}
	return fmt.Errorf("type %s is not supported", t)
}

// set parses value into f as envconfig.Process does: integers in any base strconv accepts,
// durations by time.ParseDuration, lists split at commas, maps as k1:v1,k2:v2; an empty or blank
// value makes an empty list or map.
func set(f reflect.Value, value string) error {
	switch t := f.Type(); t.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		var err error
		if t == durationType {
			var d time.Duration
			d, err = time.ParseDuration(value)
			n = int64(d)
		} else {
			n, err = strconv.ParseInt(value, 0, t.Bits())
		}
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(value, 0, t.Bits())
		if err != nil {
			return err
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(value, t.Bits())
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Slice:
		return setSlice(f, value)
	case reflect.Map:
		return setMap(f, value)
	default:
		return fmt.Errorf("type %s is not supported", t)
	}
	return nil
}

func setSlice(f reflect.Value, value string) error {
	t := f.Type()
	if t.Elem().Kind() == reflect.Uint8 {
		f.SetBytes([]byte(value))
		return nil
	}
	sl := reflect.MakeSlice(t, 0, 0)
	if strings.TrimSpace(value) != "" {
		parts := strings.Split(value, ",")
		sl = reflect.MakeSlice(t, len(parts), len(parts))
		for i, p := range parts {
			if err := set(sl.Index(i), p); err != nil {
				return err
			}
		}
	}
	f.Set(sl)
	return nil
}

func setMap(f reflect.Value, value string) error {
	t := f.Type()
	m := reflect.MakeMap(t)
	if strings.TrimSpace(value) != "" {
		for _, pair := range strings.Split(value, ",") {
			kv := strings.Split(pair, ":")
			if len(kv) != 2 {
				return fmt.Errorf("map item %q: want key:value", pair)
			}
			k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			if err := set(k, kv[0]); err != nil {
				return err
			}
			if err := set(v, kv[1]); err != nil {
				return err
			}
			m.SetMapIndex(k, v)
		}
	}
	f.Set(m)
	return nil
}
