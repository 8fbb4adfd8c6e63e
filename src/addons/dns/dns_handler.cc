// The protocol rules around the resolver (see dns_handler.h).
#include "addons/dns/dns_handler.h"

#include <algorithm>

namespace kiln::dns {
namespace {

std::string serializeTruncating(Message& m, size_t limit) {
  auto wire = serializeMessage(m);
  if (wire.ok() && wire->size() <= limit) return std::move(*wire);
  if (!wire.ok()) {
    // A record we cannot write (e.g. an invalid name from the API): SERVFAIL, not a crash.
    m.rcode = kServFail;
  } else {
    m.tc = true;
  }
  m.answers.clear();
  m.authority.clear();
  m.additional.clear();
  auto small = serializeMessage(m);
  if (small.ok()) return std::move(*small);
  m.questions.clear();
  auto bare = serializeMessage(m);
  return bare.ok() ? std::move(*bare) : std::string();
}

size_t limitFor(const Message& q, bool udp) {
  if (!udp) return kMaxMessageSize;
  if (!q.edns) return kMaxUdpPlain;
  return std::clamp<size_t>(q.edns->udpSize, kMaxUdpPlain, 4096);
}

Message baseResponse(const Message& q) {
  Message m = responseTo(q);
  m.ra = true;
  if (q.edns) m.edns = Edns{kOurUdpSize, 0, q.edns->dnssecOk};
  return m;
}

std::string errorReply(const Message& header, uint16_t rcode, bool withQuestion,
                       const Message* parsed) {
  Message m;
  m.id = header.id;
  m.qr = true;
  m.opcode = header.opcode;
  m.rd = header.rd;
  m.ra = true;
  m.rcode = rcode;
  if (withQuestion && parsed) {
    m.questions = parsed->questions;
    if (parsed->edns) m.edns = Edns{kOurUdpSize, 0, false};
  }
  auto w = serializeMessage(m);
  if (!w.ok()) {
    m.questions.clear();
    w = serializeMessage(m);
  }
  return w.ok() ? std::move(*w) : std::string();
}

}  // namespace

Handled handleQuery(Resolver& resolver, std::string_view wire, bool udp) {
  Handled h;
  auto header = parseHeaderOnly(wire);
  if (!header || header->qr) return h;  // not even a header, or a response: drop
  auto parsed = parseMessage(wire);
  if (!parsed.ok()) {
    h.kind = Handled::Kind::kReply;
    h.reply = errorReply(*header, kFormErr, false, nullptr);
    return h;
  }
  Message& q = *parsed;
  if (q.opcode != 0) {
    h.kind = Handled::Kind::kReply;
    h.reply = errorReply(q, kNotImp, q.questions.size() == 1, &q);
    return h;
  }
  if (q.questions.size() != 1 || !q.answers.empty() || !q.authority.empty()) {
    h.kind = Handled::Kind::kReply;
    h.reply = errorReply(q, kFormErr, false, nullptr);
    return h;
  }
  if (q.edns && q.edns->version > 0) {
    h.kind = Handled::Kind::kReply;
    h.reply = errorReply(q, kBadVers, true, &q);
    return h;
  }
  h.limit = limitFor(q, udp);
  const Question& question = q.questions[0];
  if (question.cls != kClassIN && question.cls != 255) {
    h.kind = Handled::Kind::kReply;
    h.reply = errorReply(q, kRefused, true, &q);
    return h;
  }
  if (question.type == kTypeOPT) {
    h.kind = Handled::Kind::kReply;
    h.reply = errorReply(q, kFormErr, true, &q);
    return h;
  }
  Answer a = resolver.resolve(question);
  if (a.forward || !a.chase.empty()) {
    h.kind = Handled::Kind::kForward;
    h.query = std::move(q);
    h.partial = std::move(a);
    return h;
  }
  h.kind = Handled::Kind::kReply;
  h.reply = finishAnswer(q, std::move(a), h.limit, true);
  return h;
}

std::string finishAnswer(const Message& query, Answer answer, size_t limit, bool authoritative) {
  Message m = baseResponse(query);
  m.aa = authoritative;
  m.rcode = answer.rcode;
  m.answers = std::move(answer.answer);
  m.authority = std::move(answer.authority);
  m.additional = std::move(answer.additional);
  return serializeTruncating(m, limit);
}

std::string answerFromUpstream(const Message& query, const Answer& partial, const Message* upstream,
                               size_t limit) {
  Message m = baseResponse(query);
  bool chase = !partial.chase.empty();
  if (chase) {
    m.aa = true;
    m.answers = partial.answer;
    if (upstream && upstream->rcode == kNoError) {
      for (const auto& r : upstream->answers) m.answers.push_back(r);
    }
    return serializeTruncating(m, limit);
  }
  if (!upstream) {
    m.rcode = kServFail;
    return serializeTruncating(m, limit);
  }
  m.rcode = static_cast<uint16_t>(upstream->rcode & 0xF);
  m.ad = false;
  m.answers = upstream->answers;
  m.authority = upstream->authority;
  m.additional = upstream->additional;
  return serializeTruncating(m, limit);
}

Question upstreamQuestion(const Handled& h) {
  Question q = h.query.questions.empty() ? Question{} : h.query.questions[0];
  if (!h.partial.chase.empty()) q.name = h.partial.chase;
  return q;
}

}  // namespace kiln::dns
