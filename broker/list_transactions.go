package broker

// ListTransactions (key 66), versions 0–2 (flexible).
//
// Lists the transactional ids this broker coordinates (KIP-664), filtered
// by state names (unknown names are listed back in unknown_state_filters),
// producer ids, v1+ how long the transaction has been running, and v2+ an
// RE2 pattern of the id (INVALID_REGULAR_EXPRESSION when it does not
// compile). COORDINATOR_LOAD_IN_PROGRESS while __transaction_state loads.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/txn"
)

func handleListTransactions(b *Broker, _ context.Context, r *request, req *kmsg.ListTransactionsRequest) kmsg.Response {
	var resp *kmsg.ListTransactionsResponse
	code := b.txns.read(func(c *txn.Coordinator) { resp = c.ListTransactions(time.Now(), req) })
	if code != 0 {
		return txnErrorResponse(req, code)
	}
	if resp == nil {
		return txnErrorResponse(req, kerr.UnknownServerError.Code)
	}
	resp.SetVersion(r.version)
	return resp
}
