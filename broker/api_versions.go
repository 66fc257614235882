package broker

// ApiVersions (key 18), versions 0–4.
//
// Tells a client which APIs and versions this broker serves: exactly the
// entries of the API table. v3 added client software name and version (which
// the broker only logs at debug level) and flexible encoding; v4 changed
// nothing on the wire for a broker that supports it. A request in a version
// above 4 is answered in v0 with UNSUPPORTED_VERSION and the ranges, which
// is how clients learn to downgrade (see conn.serve).

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

func handleApiVersions(b *Broker, _ context.Context, r *request, req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.version >= 3 && req.ClientSoftwareName != "" {
		r.conn.logger.Debug("client", "software", req.ClientSoftwareName, "version", req.ClientSoftwareVersion)
	}
	resp.ApiKeys = b.apiKeys()
	return resp
}

func (b *Broker) apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(b.apis))
	for _, a := range b.apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		keys = append(keys, k)
	}
	return keys
}

// apiVersionsFallback is the v0 response, with UNSUPPORTED_VERSION, to an
// ApiVersions request of a version the broker does not know.
func (b *Broker) apiVersionsFallback(correlationID int32) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = b.apiKeys()
	out := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(out[4:], uint32(correlationID))
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
