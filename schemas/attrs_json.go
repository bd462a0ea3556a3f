package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AppendAttributesJSON appends attrs as a JSON object with keys in ascending order. Floats always
// carry a '.' or an exponent (2.0 is written "2.0"), so ParseAttributesJSON gives back the same
// types. attrs must be normalised (see NormalizeAttributes); nil appends "{}".
func AppendAttributesJSON(dst []byte, attrs map[string]any) []byte {
	if attrs == nil {
		return append(dst, "{}"...)
	}
	return appendJSONValue(dst, attrs)
}

// AppendJSONValue appends one normalised attribute value as AppendAttributesJSON writes it.
func AppendJSONValue(dst []byte, v any) []byte { return appendJSONValue(dst, v) }

func appendJSONValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case float64:
		return appendJSONFloat(dst, x)
	case string:
		return appendJSONString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONValue(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONValue(dst, x[k])
		}
		return append(dst, '}')
	}
	// Not normalised: fall back to encoding/json so nothing is silently dropped.
	b, err := json.Marshal(v)
	if err != nil {
		return appendJSONString(dst, fmt.Sprint(v))
	}
	return append(dst, b...)
}

func appendJSONFloat(dst []byte, f float64) []byte {
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	if !bytes.ContainsAny(dst[start:], ".eE") {
		dst = append(dst, ".0"...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// ParseAttributesJSON parses a JSON object into normalised attributes: numbers with a '.' or an
// exponent become float64, other numbers int64 (an integer beyond int64 is an error). It is the
// inverse of AppendAttributesJSON and the parser for attributes sent as JSON by users.
func ParseAttributesJSON(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: attributes JSON: %v", ErrBadAttribute, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: attributes JSON: trailing data", ErrBadAttribute)
	}
	if raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: attributes JSON must be an object", ErrBadAttribute)
	}
	out, err := FromJSONValue(m, 0)
	if err != nil {
		return nil, err
	}
	attrs := out.(map[string]any)
	if len(attrs) == 0 {
		return nil, nil
	}
	return attrs, nil
}

// FromJSONValue converts a value decoded by encoding/json with UseNumber into a normalised attribute
// value (json.Number to int64 or float64 as ParseAttributesJSON does). depth is the current nesting.
func FromJSONValue(v any, depth int) (any, error) {
	if depth > MaxAttributeDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrBadAttribute, MaxAttributeDepth)
	}
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		return parseJSONNumber(string(x))
	case []any:
		return convertList(x, func(e any) (any, error) { return FromJSONValue(e, depth+1) })
	case map[string]any:
		return convertMap(x, func(e any) (any, error) { return FromJSONValue(e, depth+1) })
	}
	return nil, fmt.Errorf("%w: unsupported JSON value %T", ErrBadAttribute, v)
}

func parseJSONNumber(s string) (any, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: number %s: %v", ErrBadAttribute, s, err)
		}
		return f, nil
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: integer %s does not fit in int64", ErrBadAttribute, s)
	}
	return i, nil
}
