// Package interop tests that consumers outside Go read Tributary's topics with standard Avro
// libraries and the .avsc files alone (docs/downstream.md). It holds no production code.
package interop
