package schemas

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
)

// MaxAttributeDepth is how deeply attribute lists and maps may nest.
const MaxAttributeDepth = 16

// NormalizeAttributes returns a copy of attrs whose values have the canonical Go types: nil, bool,
// int64, float64, string, []any and map[string]any. Other integer and float types, slices, arrays,
// string-keyed maps and time.Time (as an RFC 3339 string) are converted. It fails with
// ErrBadAttribute naming the key for anything else (channels, funcs, structs, uint64 values above
// MaxInt64, nesting deeper than MaxAttributeDepth, a list of more than MaxDecodedListLen items,
// which the decoder would refuse) and with ErrBadValue for NaN or infinite floats.
// A nil or empty map normalises to nil.
//
// When every value is already a canonical scalar (nil, bool, int64, finite float64, string), attrs
// itself is returned, not a copy: callers that must not retain the map copy it themselves (the
// SDK encodes it before returning, so it never keeps it).
func NormalizeAttributes(attrs map[string]any) (map[string]any, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	if canonicalScalars(attrs) {
		return attrs, nil
	}
	return convertMap(attrs, func(v any) (any, error) { return normalize(v, 1) })
}

// convertMap converts every value of m with conv; an error names the attribute (key) whose value
// it came from. Attributes are converted this way between their forms (as given, normalised, on
// the wire, in JSON).
func convertMap[E, V any](m map[string]E, conv func(E) (V, error)) (map[string]V, error) {
	out := make(map[string]V, len(m))
	for k, e := range m {
		v, err := conv(e)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// convertList converts every element of a list attribute with conv.
func convertList[E, V any](xs []E, conv func(E) (V, error)) ([]V, error) {
	out := make([]V, len(xs))
	for i, e := range xs {
		v, err := conv(e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func canonicalScalars(attrs map[string]any) bool {
	for _, v := range attrs {
		switch x := v.(type) {
		case nil, bool, int64, string:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func normalize(v any, depth int) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, string:
		return x, nil
	case float64:
		return checkFloat(x)
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return checkFloat(float64(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case map[string]any:
		return normalizeMap(reflect.ValueOf(x), depth)
	case []any:
		return normalizeList(reflect.ValueOf(x), depth)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("%w: unsigned %d overflows int64", ErrBadAttribute, u)
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return checkFloat(rv.Float())
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		return normalizeList(rv, depth)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%w: map keys must be strings, not %s", ErrBadAttribute, rv.Type().Key())
		}
		if rv.IsNil() {
			return nil, nil
		}
		return normalizeMap(rv, depth)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), depth)
	}
	return nil, fmt.Errorf("%w: unsupported type %T", ErrBadAttribute, v)
}

func checkFloat(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w, got %v", ErrBadValue, f)
	}
	return f, nil
}

func normalizeList(rv reflect.Value, depth int) (any, error) {
	if depth >= MaxAttributeDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrBadAttribute, MaxAttributeDepth)
	}
	if rv.Len() > MaxDecodedListLen {
		return nil, fmt.Errorf("%w: a list of %d items, at most %d", ErrBadAttribute, rv.Len(), MaxDecodedListLen)
	}
	out := make([]any, rv.Len())
	for i := range out {
		v, err := normalize(rv.Index(i).Interface(), depth+1)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func normalizeMap(rv reflect.Value, depth int) (any, error) {
	if depth >= MaxAttributeDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrBadAttribute, MaxAttributeDepth)
	}
	out := make(map[string]any, rv.Len())
	it := rv.MapRange()
	for it.Next() {
		k := it.Key().String()
		v, err := normalize(it.Value().Interface(), depth+1)
		if err != nil {
			return nil, fmt.Errorf("[%q]: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// FlattenAttributes returns the top-level attribute keys in ascending order and, for each, its value
// as text: strings as they are, booleans as true/false, numbers in shortest form (2.0 as "2"), nil
// as "", lists and maps as their JSON. These are the attr_keys / attr_values columns analysts
// filter on. attrs must be normalised.
func FlattenAttributes(attrs map[string]any) (keys, values []string) {
	keys = slices.Sorted(maps.Keys(attrs))
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = flatValue(attrs[k])
	}
	return keys, values
}

// AttributeColumns returns what the tables store of attrs: the canonical JSON (as
// AppendAttributesJSON writes it) and the flattened keys and values (as FlattenAttributes gives
// them), sorting the keys once for both. attrs must be normalised.
func AttributeColumns(attrs map[string]any) (json string, keys, values []string) {
	keys, values = FlattenAttributes(attrs)
	if len(keys) == 0 {
		return "{}", keys, values
	}
	b := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONValue(b, attrs[k])
	}
	return string(append(b, '}')), keys, values
}

// AppendFlatValue appends v as FlattenAttributes gives it. v must be normalised.
func AppendFlatValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return dst
	case string:
		return append(dst, x...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int: // as the int64 NormalizeAttributes makes of it
		return strconv.AppendInt(dst, int64(x), 10)
	case float64:
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	}
	return appendJSONValue(dst, v)
}

func flatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return string(appendJSONValue(nil, v))
}
