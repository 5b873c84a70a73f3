package envoyrls

import (
	"errors"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	// Registers the "proto" codec Codec delegates to.
	_ "google.golang.org/grpc/encoding/proto"
)

// Codec returns the gRPC codec for a server that serves the Envoy service:
// the standard proto codec, except that a RateLimitRequest whose strings
// are not valid UTF-8 is still decoded, bytes as they are, instead of
// failing the call. Envoy sends header values as descriptor values, and
// those may hold any byte; the proto codec would refuse them (proto3
// strings must be UTF-8) and Envoy, failing open, would let the request
// through unlimited. Distinct bytes stay distinct keys. Install it with
// grpc.ForceServerCodecV2.
func Codec() encoding.CodecV2 { return codec{encoding.GetCodecV2("proto")} }

type codec struct{ encoding.CodecV2 }

// Unmarshal decodes with the proto codec, and a RateLimitRequest the proto
// codec refuses with the lenient decoder.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	req, ok := v.(*rlv3.RateLimitRequest)
	if !ok {
		return err
	}
	b := data.Materialize()
	var lenient rlv3.RateLimitRequest
	if lerr := decodeRequest(b, &lenient); lerr != nil {
		return err
	}
	proto.Reset(req)
	req.Domain, req.Descriptors, req.HitsAddend = lenient.Domain, lenient.Descriptors, lenient.HitsAddend
	return nil
}

var errWire = errors.New("envoyrls: malformed RateLimitRequest")

// decodeRequest decodes the fields of a RateLimitRequest the server reads,
// keeping strings as raw bytes. Unknown fields are skipped.
func decodeRequest(b []byte, m *rlv3.RateLimitRequest) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.Domain = string(v)
		case num == 2 && typ == protowire.BytesType:
			d := &rlcommon.RateLimitDescriptor{}
			if err := decodeDescriptor(v, d); err != nil {
				return err
			}
			m.Descriptors = append(m.Descriptors, d)
		case num == 3 && typ == protowire.VarintType:
			m.HitsAddend = uint32(n)
		}
		return nil
	})
}

func decodeDescriptor(b []byte, d *rlcommon.RateLimitDescriptor) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			e := &rlcommon.RateLimitDescriptor_Entry{}
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					e.Key = string(v)
				case num == 2 && typ == protowire.BytesType:
					e.Value = string(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			d.Entries = append(d.Entries, e)
		case num == 2 && typ == protowire.BytesType:
			if d.Limit == nil {
				d.Limit = &rlcommon.RateLimitDescriptor_RateLimitOverride{}
			}
			return proto.UnmarshalOptions{Merge: true}.Unmarshal(v, d.Limit)
		case num == 3 && typ == protowire.BytesType:
			if d.HitsAddend == nil {
				d.HitsAddend = &wrapperspb.UInt64Value{}
			}
			return proto.UnmarshalOptions{Merge: true}.Unmarshal(v, d.HitsAddend)
		case num == 4 && typ == protowire.VarintType:
			d.IsNegativeHits = n != 0
		}
		return nil
	})
}

// fields calls f for each field of the message b: its number, wire type,
// and its bytes (length-delimited) or value (varint).
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
