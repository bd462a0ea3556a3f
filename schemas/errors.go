package schemas

import "errors"

// Validation errors. Each is wrapped with the offending field and value; use errors.Is.
var (
	// ErrEmptyField reports a required string field (name, type, id) that is empty.
	ErrEmptyField = errors.New("empty field")
	// ErrUnknownAggregation reports an aggregation_type other than counter, gauge or histogram.
	ErrUnknownAggregation = errors.New("unknown aggregation_type")
	// ErrBadValue reports a metric value or attribute float that is NaN or infinite.
	ErrBadValue = errors.New("value must be a finite number")
	// ErrBadAttribute reports an attribute of a type that cannot be carried, or nested too deep.
	ErrBadAttribute = errors.New("bad attribute")
	// ErrBadTimestamp reports a zero timestamp or one outside the years 1970..2105 that ClickHouse's
	// DateTime can hold.
	ErrBadTimestamp = errors.New("bad timestamp")
	// ErrBadHistogram reports a metric's histogram whose parts disagree (bucket counts that do not
	// add up to its count, bounds out of order, min above max, ...) or that is set on a metric that
	// is not a histogram.
	ErrBadHistogram = errors.New("bad histogram")
)

// Decoding errors. They are permanent: the same bytes never decode, so a consumer dead-letters them.
var (
	// ErrMalformed reports bytes that are not a valid message of the expected framing and schema.
	ErrMalformed = errors.New("malformed message")
	// ErrUnknownSchema reports a framing whose schema fingerprint or id is not one we published.
	ErrUnknownSchema = errors.New("unknown writer schema")
)
