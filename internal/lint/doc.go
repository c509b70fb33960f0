// Package lint holds no code that ships: its tests parse every non-test Go
// file of the module and fail on breaches of the layering and size rules
// that docs/architecture.md and CONTRIBUTING.md describe, so that the
// architecture is checked by CI rather than by memory.
//
// The rules and the layer table live in rules_test.go; the checker in
// checker_test.go; the tests, including tests of the checker on small
// fixtures, in lint_test.go. When a new package is added the tree test fails
// until the package is given a rank in the layer table.
package lint
