package consumer

import (
	"errors"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kerr"
)

// PermanentError marks a failure that retrying the same data cannot fix: ClickHouse refused the
// statement or the rows for their size or content, or Kafka refused a record as invalid or too
// large. The worker does not retry it; it isolates the rows at fault (halving the batch) and
// dead-letters them with the reason, so the partition keeps moving. Every other error is
// retryable: the worker backs off and tries again, losing nothing.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError (nil stays nil). Stores use it for failures they know
// are caused by the data.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is permanent for the data it was about: a PermanentError, a
// ClickHouse exception whose code says the statement or its data is refused, or a Kafka error
// saying the record is invalid or too large.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return permanentClickHouseCodes[ex.Code]
	}
	for _, k := range []*kerr.Error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// permanentClickHouseCodes are the ClickHouse error codes that say the statement or the data is
// at fault, so the same statement with the same rows fails again. Codes about the server's state
// (unknown table, read-only replica, too many parts, memory, timeouts, network) are retryable: an
// operator or time fixes them, and the data is not to blame.
var permanentClickHouseCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	26:  true, // CANNOT_PARSE_QUOTED_STRING
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	62:  true, // SYNTAX_ERROR (also: max_query_size exceeded)
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	128: true, // TOO_LARGE_ARRAY_SIZE
	131: true, // TOO_LARGE_STRING_SIZE
	190: true, // SIZES_OF_ARRAYS_DOESNT_MATCH
	306: true, // TOO_DEEP_RECURSION
}
