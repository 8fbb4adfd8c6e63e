// One DNS query in, what to do with it out: the protocol rules around the resolver, with no
// I/O so unit tests and the fuzzer drive it directly. Malformed queries are answered FORMERR
// (or dropped when not even the header is there, or when the message is a response), opcodes
// other than QUERY get NOTIMP, EDNS versions above 0 BADVERS; answers that do not fit the UDP
// limit (512 bytes, or the client's EDNS0 size, at most 4096) are sent truncated (TC, no
// records) so the client retries over TCP. Thread-safe as the Resolver is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "addons/dns/dns_message.h"
#include "addons/dns/dns_resolver.h"

namespace kiln::dns {

struct Handled {
  enum class Kind { kDrop, kReply, kForward };
  Kind kind = Kind::kDrop;
  std::string reply;  // kReply: the wire answer
  // kForward: the parsed query and what the resolver answered so far (a CNAME to chase, or
  // nothing: the whole question is for upstream).
  Message query;
  Answer partial;
  size_t limit = kMaxUdpPlain;  // the answer's size limit (UDP) or 65535 (TCP)
};

Handled handleQuery(Resolver& resolver, std::string_view wire, bool udp);

// The answer to `query` with `answer`'s records, truncated to `limit` when it does not fit.
std::string finishAnswer(const Message& query, Answer answer, size_t limit, bool authoritative);

// The client's answer from an upstream response (nullptr: upstream failed, SERVFAIL); for a
// chase, `partial` holds the CNAME records that go first.
std::string answerFromUpstream(const Message& query, const Answer& partial, const Message* upstream,
                               size_t limit);

// The question upstream is asked: the chased CNAME target, or the client's question.
Question upstreamQuestion(const Handled& h);

}  // namespace kiln::dns
