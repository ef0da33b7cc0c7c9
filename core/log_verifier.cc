// Event-by-event verification of an audit log; see log_verifier.h.
#include "core/log_verifier.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/parallel_replayer.h"
#include "core/rules.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/wire_format_lite.h"

namespace permit::core {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;

CodedInputStream InputOf(absl::string_view bytes) {
  return CodedInputStream(reinterpret_cast<const uint8_t*>(bytes.data()),
                          static_cast<int>(bytes.size()));
}

// Reads a length-delimited payload's size and skips it; the payload is then
// bytes.substr(*at, *size).
bool SkipPayload(CodedInputStream& in, absl::string_view bytes, size_t* at,
                 uint32_t* size) {
  if (!in.ReadVarint32(size)) return false;
  *at = static_cast<size_t>(in.CurrentPosition());
  return *size <= bytes.size() - *at && in.Skip(static_cast<int>(*size));
}

// A message type's fields as IsPlain needs them, by field number: the tag
// each must come with (0 for none), and for a message field its type's
// shape. Built once, from the descriptors, for the Application's types.
struct Shape {
  struct Field {
    uint32_t tag = 0;
    FieldDescriptor::Type type = FieldDescriptor::TYPE_BYTES;
    const Shape* message = nullptr;  // nullptr: too deep, refused
  };
  std::vector<Field> fields;
};

const Shape* ShapeOf(const Descriptor* d, int depth) {
  if (depth > 16) return nullptr;
  auto* shape = new Shape;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->number() > 64 || f->type() == FieldDescriptor::TYPE_GROUP) continue;
    if (shape->fields.size() <= static_cast<size_t>(f->number())) {
      shape->fields.resize(f->number() + 1);
    }
    Shape::Field& field = shape->fields[f->number()];
    field.type = f->type();
    field.tag = WireFormatLite::MakeTag(
        f->number(),
        WireFormatLite::WireTypeForFieldType(static_cast<WireFormatLite::FieldType>(f->type())));
    if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      field.message = ShapeOf(f->message_type(), depth + 1);
    }
  }
  return shape;
}

// True if `bytes` are a plain encoding of a message of shape `s`: only
// known fields, each with its declared wire type, valid UTF-8 in every
// string, no groups or packed fields. Such bytes certainly parse; anything
// else may or may not, and is left to the parser.
bool IsPlain(const Shape& s, absl::string_view bytes) {
  CodedInputStream in = InputOf(bytes);
  while (!in.ExpectAtEnd()) {
    const uint32_t tag = in.ReadTag();
    const uint32_t number = WireFormatLite::GetTagFieldNumber(tag);
    if (number >= s.fields.size() || s.fields[number].tag != tag || tag == 0) return false;
    const Shape::Field& f = s.fields[number];
    if (WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    size_t at = 0;
    uint32_t size = 0;
    if (!SkipPayload(in, bytes, &at, &size)) return false;
    if (f.type == FieldDescriptor::TYPE_STRING) {
      if (!google::protobuf::internal::IsStructurallyValidUTF8(bytes.data() + at,
                                                               static_cast<int>(size))) {
        return false;
      }
    } else if (f.type == FieldDescriptor::TYPE_MESSAGE) {
      if (f.message == nullptr || !IsPlain(*f.message, bytes.substr(at, size))) return false;
    }
  }
  return true;
}

const Shape& ApplicationShape() {
  static const Shape* const shape = ShapeOf(v1::Application::descriptor(), 0);
  return *shape;
}

// For the common submit event (one `submit` holding just one plain
// application, no other details): sets `*app` to the application's bytes
// and `*rest` to the event's bytes without the `submit` field, and returns
// true. Parsing `*rest` then gives the same event without its application.
// Returns false for anything else, which is then parsed whole.
bool SplitSubmit(absl::string_view bytes, std::string* rest, absl::string_view* app) {
  CodedInputStream in = InputOf(bytes);
  size_t begin = 0, end = 0;
  absl::string_view submit;
  bool found = false;
  while (!in.ExpectAtEnd()) {
    const size_t tag_at = static_cast<size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field == 0) return false;
    if (field >= v1::Event::kSubmitFieldNumber && field <= v1::Event::kReasonFieldNumber) {
      // One submit and no other details: a oneof merges or switches otherwise.
      if (found || tag != WireFormatLite::MakeTag(v1::Event::kSubmitFieldNumber,
                                                  WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
        return false;
      }
      size_t at = 0;
      uint32_t size = 0;
      if (!SkipPayload(in, bytes, &at, &size)) return false;
      submit = bytes.substr(at, size);
      begin = tag_at;
      end = at + size;
      found = true;
      continue;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return false;
  }
  if (!found) return false;
  CodedInputStream sub = InputOf(submit);
  if (sub.ReadTag() != WireFormatLite::MakeTag(v1::SubmitDetails::kApplicationFieldNumber,
                                               WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
    return false;
  }
  size_t at = 0;
  uint32_t size = 0;
  if (!SkipPayload(sub, submit, &at, &size) || at + size != submit.size()) return false;
  *app = submit.substr(at, size);
  if (!IsPlain(ApplicationShape(), *app)) return false;
  rest->assign(bytes.data(), begin);
  rest->append(bytes.data() + end, bytes.size() - end);
  return true;
}

// True if `stored` equals `derived` (a serialized Case whose application is
// present but empty) with the application's bytes `app` in its place.
bool EqualsWithApplication(absl::string_view derived, absl::string_view app,
                           absl::string_view stored) {
  constexpr uint32_t kTag = WireFormatLite::MakeTag(
      v1::Case::kApplicationFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  CodedInputStream in = InputOf(derived);
  size_t at = 0;
  for (;;) {
    at = static_cast<size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return false;
    if (tag == kTag) break;
    if (!WireFormatLite::SkipField(&in, tag)) return false;
  }
  // Fields are serialized in number order and the tag takes one byte.
  static_assert(kTag < 0x80);
  if (derived.size() < at + 2 || derived[at + 1] != 0) return false;
  if (stored.substr(0, at) != derived.substr(0, at)) return false;
  stored.remove_prefix(std::min(at, stored.size()));
  uint8_t header[1 + 5];
  header[0] = static_cast<uint8_t>(kTag);
  const uint8_t* header_end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(app.size()), header + 1);
  const absl::string_view h(reinterpret_cast<const char*>(header),
                            static_cast<size_t>(header_end - header));
  if (!absl::StartsWith(stored, h)) return false;
  stored.remove_prefix(h.size());
  if (!absl::StartsWith(stored, app)) return false;
  stored.remove_prefix(app.size());
  return stored == derived.substr(at + 2);
}

}  // namespace

absl::Status LogVerifier::Add(uint64_t sequence, absl::string_view bytes,
                              std::vector<TreeNode>* completed) {
  if (!failed_.ok()) return failed_;
  if (sequence != tree_.size() + 1) return Fail(sequence, GapMessage(sequence));
  tree_.Append(LeafHash(bytes), completed);
  return Replay(sequence, bytes);
}

std::string LogVerifier::GapMessage(uint64_t sequence) const {
  const uint64_t expected = replayed_ + 1;
  return sequence > expected ? absl::StrCat("events ", expected, " to ", sequence - 1,
                                            " are missing")
                             : absl::StrCat("out of order; expected event ", expected);
}

absl::Status LogVerifier::Fail(uint64_t sequence, absl::string_view why) {
  failed_ = absl::DataLossError(absl::StrCat("event ", sequence, ": ", why));
  return failed_;
}

absl::Status LogVerifier::Replay(uint64_t sequence, absl::string_view bytes) {
  if (!failed_.ok()) return failed_;
  if (!shard_ && sequence != replayed_ + 1) return Fail(sequence, GapMessage(sequence));
  if (++scratch_events_ == 1024) {
    scratch_.Reset();
    scratch_events_ = 0;
  }
  v1::Event& e = *google::protobuf::Arena::CreateMessage<v1::Event>(&scratch_);
  // A submit's application is kept as bytes (see Entry): the event is
  // applied with an empty one, which the rules do not look into.
  absl::string_view app;
  bool raw = SplitSubmit(bytes, &stripped_, &app) &&
             e.ParseFromArray(stripped_.data(), static_cast<int>(stripped_.size()));
  if (raw) {
    e.mutable_submit()->mutable_application();
  } else if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Fail(sequence, "the stored bytes do not parse as an event");
  }
  if (e.sequence() != sequence) {
    return Fail(sequence, absl::StrCat("it records sequence number ", e.sequence()));
  }
  // Shards are chosen by the first case id on the wire and parsing keeps the
  // last: an event encoding two must not split a case's history.
  if (CaseIdOfEvent(bytes) != e.case_id()) {
    return Fail(sequence, "its case id is encoded more than once; permitd never "
                          "writes such bytes");
  }
  ++replayed_;

  auto [it, inserted] = cases_.try_emplace(e.case_id());
  Entry& entry = it->second;
  if (inserted) entry.c = google::protobuf::Arena::CreateMessage<v1::Case>(&cases_arena_);
  v1::Case& c = *entry.c;
  if (inserted && partial_ && e.action() != v1::ACTION_SUBMIT) {
    // Its earlier events precede this range: take the event's word for
    // where the case stood, and check from here on.
    ++unchecked_cases_;
    trusted_[e.case_id()] = true;
    c.set_id(e.case_id());
    c.set_organisation(e.organisation());
    c.set_state(e.to_state());
    c.set_version(e.case_version());
    c.set_last_sequence(e.sequence());
    return absl::OkStatus();
  }
  if (partial_) {
    if (auto t = trusted_.find(e.case_id()); t != trusted_.end()) {
      // A case taken on trust: versions must still follow on.
      if (e.case_version() != c.version() + 1) {
        return Fail(sequence, absl::StrCat("case ", e.case_id(), " jumps from version ",
                                           c.version(), " to ", e.case_version()));
      }
      c.set_state(e.to_state());
      c.set_version(e.case_version());
      c.set_last_sequence(e.sequence());
      return absl::OkStatus();
    }
  }
  if (absl::Status s = ApplyEvent(e, &c); !s.ok()) {
    // ApplyEvent names the event already.
    failed_ = absl::DataLossError(s.message());
    return failed_;
  }
  if (raw && e.action() == v1::ACTION_SUBMIT && !app.empty()) {
    char* copy = google::protobuf::Arena::CreateArray<char>(&cases_arena_, app.size());
    memcpy(copy, app.data(), app.size());
    entry.app = copy;
    entry.app_size = app.size();
  }
  return absl::OkStatus();
}

const v1::Case* LogVerifier::Materialized(const Entry& entry) const {
  if (entry.app != nullptr) {
    // SplitSubmit checked that the bytes parse.
    (void)entry.c->mutable_application()->ParseFromArray(
        entry.app, static_cast<int>(entry.app_size));
    entry.app = nullptr;
    entry.app_size = 0;
  }
  return entry.c;
}

absl::Status LogVerifier::CheckSnapshot(const v1::Case& stored) const {
  auto it = cases_.find(stored.id());
  if (it == cases_.end()) {
    return absl::DataLossError(
        absl::StrCat("case ", stored.id(), " is stored but has no events in the log"));
  }
  const v1::Case& derived = *Materialized(it->second);
  if (trusted_.contains(stored.id())) {
    if (stored.version() != derived.version() || stored.state() != derived.state()) {
      return absl::DataLossError(absl::StrCat(
          "case ", stored.id(), ": the stored snapshot (version ", stored.version(),
          ") differs from the log (version ", derived.version(), ")"));
    }
    return absl::OkStatus();
  }
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (!d.Compare(derived, stored)) {
    if (diff.size() > 300) diff = diff.substr(0, 300) + "...";
    return absl::DataLossError(absl::StrCat(
        "case ", stored.id(), ": the stored snapshot differs from the state "
        "re-derived from the log: ", diff));
  }
  return absl::OkStatus();
}

const v1::Case* LogVerifier::FindCase(absl::string_view id) const {
  auto it = cases_.find(id);
  return it == cases_.end() ? nullptr : Materialized(it->second);
}

std::vector<std::string> LogVerifier::CaseIds() const {
  std::vector<std::string> ids;
  ids.reserve(cases_.size());
  for (const auto& [id, c] : cases_) ids.push_back(id);
  return ids;
}

absl::Status LogVerifier::CheckSnapshotBytes(absl::string_view id,
                                             absl::string_view stored_bytes) {
  auto it = cases_.find(id);
  if (it != cases_.end() && !trusted_.contains(id)) {
    // The writer serialized the same message the rules derive here, so equal
    // cases have equal bytes; only a difference needs the slow comparison.
    // With the application kept as bytes, they go where the derived case
    // has an empty one.
    const Entry& entry = it->second;
    buffer_.clear();
    if (entry.c->SerializeToString(&buffer_) &&
        (entry.app == nullptr
             ? buffer_ == stored_bytes
             : EqualsWithApplication(buffer_, absl::string_view(entry.app, entry.app_size),
                                     stored_bytes))) {
      return absl::OkStatus();
    }
  }
  v1::Case stored;
  if (!stored.ParseFromArray(stored_bytes.data(), static_cast<int>(stored_bytes.size()))) {
    return absl::DataLossError(absl::StrCat("the stored snapshot of case ", id,
                                            " does not parse"));
  }
  if (stored.id() != id) {
    return absl::DataLossError(absl::StrCat("the snapshot stored under ", id,
                                            " is of case ", stored.id()));
  }
  return CheckSnapshot(stored);
}

}  // namespace permit::core
