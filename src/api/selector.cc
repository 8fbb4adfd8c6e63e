// Label and field selectors (see selector.h). The label grammar and checks follow
// k8s.io/apimachinery/pkg/labels (a lexer of identifiers, operators, parentheses and commas);
// the selectable fields per kind follow each upstream registry's field-label conversions.
#include "api/selector.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace kiln::api {

using nlohmann::json;

namespace {

Status invalid(const std::string& m) { return Status(Code::kInvalidArgument, m); }

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// A qualified name's name part, or a label value: at most 63 characters, alphanumerics, '-',
// '_' and '.', beginning and ending with an alphanumeric. Empty is allowed for values.
bool validNamePart(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool validDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t i = 0;
  while (i <= s.size()) {
    size_t dot = s.find('.', i);
    std::string label = s.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (label.empty() || label.size() > 63) return false;
    if (!std::isalnum(static_cast<unsigned char>(label.front())) ||
        !std::isalnum(static_cast<unsigned char>(label.back()))) {
      return false;
    }
    for (char c : label) {
      if (!(std::islower(static_cast<unsigned char>(c)) ||
            std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
        return false;
      }
    }
    if (dot == std::string::npos) break;
    i = dot + 1;
  }
  return true;
}

Status checkKey(const std::string& key) {
  std::string name = key;
  size_t slash = key.find('/');
  if (slash != std::string::npos) {
    std::string prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (!validDnsSubdomain(prefix)) {
      return invalid("unable to parse requirement: invalid label key \"" + key +
                     "\": prefix part must be a lowercase RFC 1123 subdomain");
    }
  }
  if (!validNamePart(name)) {
    return invalid("unable to parse requirement: invalid label key \"" + key +
                   "\": name part must consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character");
  }
  return Status::Ok();
}

Status checkValue(const std::string& v) {
  if (v.empty() || validNamePart(v)) return Status::Ok();
  return invalid("unable to parse requirement: invalid label value: \"" + v +
                 "\": at key: a valid label must be an empty string or consist of alphanumeric "
                 "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                 "character");
}

// The lexer: identifiers (anything but whitespace and the special characters), the operators
// = == != ! < > and the punctuation ( ) ,, and the keywords in / notin.
struct Token {
  enum Kind { kIdent, kOp, kOpen, kClose, kComma, kEnd } kind;
  std::string text;
};

std::vector<Token> lex(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0;
  auto special = [](char c) {
    return c == '=' || c == '!' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',';
  };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '(') {
      out.push_back({Token::kOpen, "("});
      ++i;
    } else if (c == ')') {
      out.push_back({Token::kClose, ")"});
      ++i;
    } else if (c == ',') {
      out.push_back({Token::kComma, ","});
      ++i;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      std::string op(1, c);
      if ((c == '=' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') op += '=';
      out.push_back({Token::kOp, op});
      i += op.size();
    } else {
      size_t j = i;
      while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])) && !special(s[j])) {
        ++j;
      }
      out.push_back({Token::kIdent, s.substr(i, j - i)});
      i = j;
    }
  }
  out.push_back({Token::kEnd, ""});
  return out;
}

std::string describe(const Token& t) { return t.kind == Token::kEnd ? "EOS" : t.text; }

}  // namespace

StatusOr<LabelSelector> LabelSelector::parse(const std::string& s) {
  LabelSelector sel;
  std::vector<Token> toks = lex(s);
  size_t i = 0;
  if (toks[0].kind == Token::kEnd) return sel;
  while (true) {
    Requirement r;
    if (toks[i].kind == Token::kOp && toks[i].text == "!") {
      ++i;
      if (toks[i].kind != Token::kIdent) {
        return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                       "', expected: identifier");
      }
      r.key = toks[i++].text;
      r.op = Op::kDoesNotExist;
    } else if (toks[i].kind == Token::kIdent) {
      r.key = toks[i++].text;
      const Token& t = toks[i];
      if (t.kind == Token::kComma || t.kind == Token::kEnd) {
        r.op = Op::kExists;
      } else if (t.kind == Token::kOp) {
        if (t.text == "=" || t.text == "==")
          r.op = Op::kEquals;
        else if (t.text == "!=")
          r.op = Op::kNotEquals;
        else if (t.text == ">")
          r.op = Op::kGreater;
        else if (t.text == "<")
          r.op = Op::kLess;
        else
          return invalid("unable to parse requirement: found '" + t.text +
                         "', expected: '=', '!=', '==', 'in', notin'");
        ++i;
        std::string v;
        if (toks[i].kind == Token::kIdent)
          v = toks[i++].text;
        else if (toks[i].kind != Token::kComma && toks[i].kind != Token::kEnd)
          return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                         "', expected: identifier");
        if (r.op == Op::kGreater || r.op == Op::kLess) {
          if (v.empty() || !std::all_of(v.begin(), v.end(), ::isdigit) || v.size() > 18) {
            return invalid(
                "unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                "must be an integer");
          }
        }
        r.values = {v};
      } else if (t.kind == Token::kIdent && (t.text == "in" || t.text == "notin")) {
        r.op = t.text == "in" ? Op::kIn : Op::kNotIn;
        ++i;
        if (toks[i].kind != Token::kOpen) {
          return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                         "', expected: '('");
        }
        ++i;
        while (true) {
          if (toks[i].kind == Token::kIdent) {
            r.values.push_back(toks[i++].text);
          } else if (toks[i].kind == Token::kComma || toks[i].kind == Token::kClose) {
            r.values.push_back("");  // an empty value between commas
          } else {
            return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                           "', expected: ',', ')' or identifier");
          }
          if (toks[i].kind == Token::kComma) {
            ++i;
            continue;
          }
          if (toks[i].kind == Token::kClose) {
            ++i;
            break;
          }
          return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                         "', expected: ',' or ')'");
        }
        if (r.values.size() == 1 && r.values[0].empty()) r.values.clear();
        if (r.values.empty()) {
          return invalid(
              "unable to parse requirement: for 'in', 'notin' operators, values set "
              "can't be empty");
        }
      } else {
        return invalid("unable to parse requirement: found '" + describe(t) +
                       "', expected: '=', '!=', '==', 'in', notin'");
      }
    } else {
      return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                     "', expected: !, identifier");
    }
    KILN_RETURN_IF_ERROR(checkKey(r.key));
    if (r.op != Op::kGreater && r.op != Op::kLess) {
      for (const auto& v : r.values) KILN_RETURN_IF_ERROR(checkValue(v));
    }
    sel.reqs_.push_back(std::move(r));
    if (toks[i].kind == Token::kEnd) break;
    if (toks[i].kind != Token::kComma) {
      return invalid("unable to parse requirement: found '" + describe(toks[i]) +
                     "', expected: ','");
    }
    ++i;
  }
  return sel;
}

StatusOr<LabelSelector> LabelSelector::fromJson(const json& selector) {
  LabelSelector sel;
  if (selector.is_null()) return sel;
  if (!selector.is_object()) return invalid("selector: must be an object");
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && !ml->is_null()) {
    if (!ml->is_object()) return invalid("selector.matchLabels: must be an object");
    for (auto it = ml->begin(); it != ml->end(); ++it) {
      if (!it->is_string()) return invalid("selector.matchLabels: values must be strings");
      KILN_RETURN_IF_ERROR(checkKey(it.key()));
      KILN_RETURN_IF_ERROR(checkValue(it->get<std::string>()));
      sel.reqs_.push_back({it.key(), Op::kEquals, {it->get<std::string>()}});
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && !me->is_null()) {
    if (!me->is_array()) return invalid("selector.matchExpressions: must be a list");
    for (const auto& e : *me) {
      if (!e.is_object() || !e.contains("key") || !e["key"].is_string()) {
        return invalid("selector.matchExpressions: each needs a key");
      }
      Requirement r;
      r.key = e["key"].get<std::string>();
      std::string op = e.value("operator", "");
      if (op == "In")
        r.op = Op::kIn;
      else if (op == "NotIn")
        r.op = Op::kNotIn;
      else if (op == "Exists")
        r.op = Op::kExists;
      else if (op == "DoesNotExist")
        r.op = Op::kDoesNotExist;
      else
        return invalid("selector.matchExpressions.operator: Invalid value: \"" + op +
                       "\": not a valid selector operator");
      for (const auto& v : e.value("values", json::array())) {
        if (!v.is_string()) return invalid("selector.matchExpressions.values: must be strings");
        r.values.push_back(v.get<std::string>());
      }
      if ((r.op == Op::kIn || r.op == Op::kNotIn) && r.values.empty()) {
        return invalid(
            "selector.matchExpressions.values: Required value: must be specified "
            "when `operator` is 'In' or 'NotIn'");
      }
      if ((r.op == Op::kExists || r.op == Op::kDoesNotExist) && !r.values.empty()) {
        return invalid(
            "selector.matchExpressions.values: Forbidden: may not be specified when "
            "`operator` is 'Exists' or 'DoesNotExist'");
      }
      KILN_RETURN_IF_ERROR(checkKey(r.key));
      sel.reqs_.push_back(std::move(r));
    }
  }
  return sel;
}

bool LabelSelector::matches(const json& labels) const {
  for (const auto& r : reqs_) {
    const json* v = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(r.key);
      if (it != labels.end() && it->is_string()) v = &*it;
    }
    const std::string val = v ? v->get<std::string>() : std::string();
    auto in = [&] { return std::find(r.values.begin(), r.values.end(), val) != r.values.end(); };
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!v || !in()) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (v && in()) return false;
        break;
      case Op::kExists:
        if (!v) return false;
        break;
      case Op::kDoesNotExist:
        if (v) return false;
        break;
      case Op::kGreater:
      case Op::kLess: {
        if (!v || val.empty() || val.size() > 18 || !std::all_of(val.begin(), val.end(), ::isdigit))
          return false;
        long long a = std::stoll(val), b = std::stoll(r.values[0]);
        if (r.op == Op::kGreater ? !(a > b) : !(a < b)) return false;
        break;
      }
    }
  }
  return true;
}

std::string LabelSelector::toString() const {
  // Requirements sorted by key, as upstream's labels.Selector prints them.
  std::vector<Requirement> sorted = reqs_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Requirement& a, const Requirement& b) { return a.key < b.key; });
  std::string out;
  for (const auto& r : sorted) {
    if (!out.empty()) out += ',';
    auto set = [&] {
      std::vector<std::string> v = r.values;
      std::sort(v.begin(), v.end());
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
      return "(" + s + ")";
    };
    switch (r.op) {
      case Op::kEquals:
        out += r.key + "=" + r.values[0];
        break;
      case Op::kNotEquals:
        out += r.key + "!=" + r.values[0];
        break;
      case Op::kIn:
        out += r.key + " in " + set();
        break;
      case Op::kNotIn:
        out += r.key + " notin " + set();
        break;
      case Op::kExists:
        out += r.key;
        break;
      case Op::kDoesNotExist:
        out += "!" + r.key;
        break;
      case Op::kGreater:
        out += r.key + ">" + r.values[0];
        break;
      case Op::kLess:
        out += r.key + "<" + r.values[0];
        break;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Field selectors
// ------------------------------------------------------------------------------------------------

namespace {

// Selectable fields beyond metadata.name/metadata.namespace, per kind, with the JSON path each
// reads and the value an absent field has.
struct FieldSpec {
  const char* path;    // dotted path into the object
  const char* absent;  // value when absent
};

const std::map<std::string, std::map<std::string, FieldSpec>>& fieldTable() {
  static const auto* t = new std::map<std::string, std::map<std::string, FieldSpec>>{
      {"Pod",
       {{"spec.nodeName", {"spec.nodeName", ""}},
        {"spec.restartPolicy", {"spec.restartPolicy", ""}},
        {"spec.schedulerName", {"spec.schedulerName", ""}},
        {"spec.serviceAccountName", {"spec.serviceAccountName", ""}},
        {"spec.hostNetwork", {"spec.hostNetwork", "false"}},
        {"status.phase", {"status.phase", ""}},
        {"status.podIP", {"status.podIP", ""}},
        {"status.nominatedNodeName", {"status.nominatedNodeName", ""}}}},
      {"Event",
       {{"involvedObject.kind", {"involvedObject.kind", ""}},
        {"involvedObject.namespace", {"involvedObject.namespace", ""}},
        {"involvedObject.name", {"involvedObject.name", ""}},
        {"involvedObject.uid", {"involvedObject.uid", ""}},
        {"involvedObject.apiVersion", {"involvedObject.apiVersion", ""}},
        {"involvedObject.resourceVersion", {"involvedObject.resourceVersion", ""}},
        {"involvedObject.fieldPath", {"involvedObject.fieldPath", ""}},
        {"reason", {"reason", ""}},
        {"reportingComponent", {"reportingComponent", ""}},
        {"source", {"source.component", ""}},
        {"type", {"type", ""}}}},
      {"Secret", {{"type", {"type", ""}}}},
      {"Namespace", {{"status.phase", {"status.phase", ""}}}},
      {"Node", {{"spec.unschedulable", {"spec.unschedulable", "false"}}}},
      {"ReplicaSet", {{"status.replicas", {"status.replicas", "0"}}}},
      {"ReplicationController", {{"status.replicas", {"status.replicas", "0"}}}},
      {"Job", {{"status.successful", {"status.succeeded", "0"}}}},
      {"Service", {{"spec.clusterIP", {"spec.clusterIP", ""}}, {"spec.type", {"spec.type", ""}}}},
  };
  return *t;
}

std::string fieldValue(const json& obj, const std::string& path, const char* absent) {
  const json* cur = &obj;
  size_t i = 0;
  while (i <= path.size()) {
    size_t dot = path.find('.', i);
    std::string part = path.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (!cur->is_object()) return absent;
    auto it = cur->find(part);
    if (it == cur->end() || it->is_null()) return absent;
    cur = &*it;
    if (dot == std::string::npos) break;
    i = dot + 1;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_number()) return cur->dump();
  return absent;
}

}  // namespace

StatusOr<FieldSelector> FieldSelector::parse(const std::string& s, const std::string& kind) {
  FieldSelector sel;
  sel.kind_ = kind;
  if (s.empty()) return sel;
  // Terms are comma-separated; a backslash escapes ',', '=' and '\' in values (upstream).
  std::vector<std::string> terms;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      cur += s[i];
      cur += s[++i];
    } else if (s[i] == ',') {
      terms.push_back(cur);
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  terms.push_back(cur);
  const auto& table = fieldTable();
  auto kindFields = table.find(kind);
  for (const auto& term : terms) {
    Requirement r;
    size_t op = std::string::npos, oplen = 0;
    for (size_t i = 0; i < term.size(); ++i) {
      if (term[i] == '\\') {
        ++i;
        continue;
      }
      if (term.compare(i, 2, "!=") == 0) {
        op = i, oplen = 2, r.equals = false;
        break;
      }
      if (term.compare(i, 2, "==") == 0) {
        op = i, oplen = 2;
        break;
      }
      if (term[i] == '=') {
        op = i, oplen = 1;
        break;
      }
    }
    if (op == std::string::npos) {
      return invalid("invalid selector: '" + s + "'; can't understand '" + term + "'");
    }
    r.field = term.substr(0, op);
    std::string raw = term.substr(op + oplen);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
      r.value += raw[i];
    }
    while (!r.field.empty() && r.field.back() == ' ') r.field.pop_back();
    while (!r.field.empty() && r.field.front() == ' ') r.field.erase(0, 1);
    bool known = r.field == "metadata.name" || r.field == "metadata.namespace" ||
                 (kindFields != table.end() && kindFields->second.count(r.field));
    if (!known) return invalid("field label not supported: " + r.field);
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool FieldSelector::matches(const json& object) const {
  for (const auto& r : reqs_) {
    std::string v;
    if (r.field == "metadata.name" || r.field == "metadata.namespace") {
      v = fieldValue(object, r.field, "");
    } else {
      const auto& table = fieldTable();
      auto k = table.find(kind_);
      const FieldSpec* spec = nullptr;
      if (k != table.end()) {
        auto f = k->second.find(r.field);
        if (f != k->second.end()) spec = &f->second;
      }
      v = spec ? fieldValue(object, spec->path, spec->absent) : std::string();
    }
    if ((v == r.value) != r.equals) return false;
  }
  return true;
}

}  // namespace kiln::api
