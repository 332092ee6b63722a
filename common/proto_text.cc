#include "common/proto_text.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/text.h"

namespace agentd {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A string field's place: the message holding it, the field, and its index when repeated.
struct StringField {
  Message* owner;
  const FieldDescriptor* field;
  int index;  // -1 for a singular field
};

void CollectStrings(Message* m, std::vector<StringField>* out) {
  const Reflection* r = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) out->push_back({m, f, i});
      } else {
        out->push_back({m, f, -1});
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          CollectStrings(r->MutableRepeatedMessage(m, f, i), out);
        }
      } else {
        CollectStrings(r->MutableMessage(m, f), out);
      }
    }
  }
}

std::string Get(const StringField& s) {
  const Reflection* r = s.owner->GetReflection();
  return s.index < 0 ? r->GetString(*s.owner, s.field)
                     : r->GetRepeatedString(*s.owner, s.field, s.index);
}

void Set(const StringField& s, std::string v) {
  const Reflection* r = s.owner->GetReflection();
  if (s.index < 0) {
    r->SetString(s.owner, s.field, std::move(v));
  } else {
    r->SetRepeatedString(s.owner, s.field, s.index, std::move(v));
  }
}

}  // namespace

void MakeStringsUtf8(Message* m) {
  std::vector<StringField> strings;
  CollectStrings(m, &strings);
  for (const StringField& s : strings) {
    std::string v = Get(s);
    if (!IsValidUtf8(v)) Set(s, ValidUtf8(v));
  }
}

void TransformStrings(Message* m, const std::function<std::string(const std::string&)>& fn) {
  std::vector<StringField> strings;
  CollectStrings(m, &strings);
  for (const StringField& s : strings) {
    std::string v = Get(s);
    std::string w = fn(v);
    if (w != v) Set(s, std::move(w));
  }
}

int64_t FitStrings(Message* m, size_t max_bytes) {
  int64_t cut = 0;
  // Each round cuts the longest text by what is over (and its marker's room), or whole
  // when it is shorter than that, and the next round the next longest.
  for (int round = 0; round < 64; ++round) {
    const size_t size = m->ByteSizeLong();
    if (size <= max_bytes) break;
    std::vector<StringField> strings;
    CollectStrings(m, &strings);
    const StringField* longest = nullptr;
    size_t longest_size = 0;
    for (const StringField& s : strings) {
      size_t n = Get(s).size();
      if (n > longest_size) {
        longest_size = n;
        longest = &s;
      }
    }
    constexpr size_t kMarkerRoom = 64;
    if (longest == nullptr || longest_size <= kMarkerRoom) break;  // nothing left to cut
    const size_t excess = size - max_bytes;
    size_t keep = longest_size > excess + kMarkerRoom ? longest_size - excess - kMarkerRoom : 0;
    std::string v = Get(*longest);
    std::string kept = Utf8Prefix(v, keep);
    const int64_t removed = static_cast<int64_t>(v.size()) - static_cast<int64_t>(kept.size());
    Set(*longest, absl::StrCat(kept, "\n[… ", removed, " bytes cut by agentd]"));
    cut += removed;
  }
  return cut;
}

}  // namespace agentd
