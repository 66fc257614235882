package broker

import "errors"

// Ready reports whether the broker serves clients: nil once Start has
// returned and until Close begins. The HTTP API's /readyz answers from it.
//
// Start returns only after the metadata controller leads its quorum, and a
// one-voter quorum keeps its leader until it is shut down, so a started,
// open broker has a metadata leader. The cluster step must replace this with
// the controller's live view of the leader.
func (b *Broker) Ready() error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return errors.New("broker is shutting down")
	}
	return nil
}
