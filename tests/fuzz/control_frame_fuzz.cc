// The control socket's bytes, both sides: meshd reading a request from
// meshctl (FrameDecoder with the request cap, then DecodeRequest, as
// control_session.cc's OnRequestBytes does) and meshctl reading meshd's
// replies (FrameDecoder with the response cap, then DecodeResponse for every
// frame of a stream, as control_client.cc does). node/control/frame.cc,
// messages.cc and convert*.cc.
//
//   input = [mode][stream...]
//   mode & 1:  0 meshd reads a request, 1 meshctl reads responses
//   mode >> 1: the size of each read (0: as large as the reader's buffer)
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "node/common/log.h"
#include "node/control/convert.h"
#include "node/control/frame.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  if (size < 1) return 0;
  const bool client = data[0] & 1;
  size_t chunk = data[0] >> 1;
  if (chunk == 0) chunk = client ? 64 * 1024 : 4096;  // the readers' buffers
  data++;
  size--;

  FrameDecoder decoder(client ? kMaxResponseBytes : kMaxRequestBytes);
  for (size_t at = 0; at < size; at += chunk) {
    if (!decoder.Feed(data + at, std::min(chunk, size - at)).ok()) return 0;
    Frame frame;
    while (decoder.Next(&frame)) {
      if (!client) {
        // meshd answers the first request and reads nothing more.
        Result<ControlRequest> request = DecodeRequest(frame);
        if (request.ok()) {
          // What meshd accepts, meshctl could have sent.
          Result<std::vector<uint8_t>> again = EncodeRequest(*request);
          if (!again.ok()) __builtin_trap();
        }
        return 0;
      }
      if (!DecodeResponse(frame).ok()) return 0;  // meshctl gives up on a bad reply
    }
  }
  return 0;
}
