// Package e2e holds end-to-end tests that run the samsa binary as a
// separate process: what only a real process shows, such as surviving
// kill -9. It has no code of its own; the tests build ./cmd/samsa once and
// drive it with franz-go.
package e2e
