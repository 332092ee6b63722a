#include "common/proto_text.h"

#include <algorithm>
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
  const size_t size = m->ByteSizeLong();
  if (size <= max_bytes) return 0;
  std::vector<StringField> strings;
  CollectStrings(m, &strings);
  // One pass: the largest length cap L such that cutting every longer text to L (plus its
  // marker) brings the message within max_bytes. The texts' lengths, sorted, give the
  // bytes each candidate L removes; a binary search over L finds it. Each text is read by
  // reference, so a message of many texts costs one sort, not a copy per round.
  std::vector<size_t> lengths;
  lengths.reserve(strings.size());
  for (const StringField& f : strings) {
    const Reflection* r = f.owner->GetReflection();
    std::string scratch;
    const std::string& v =
        f.index < 0 ? r->GetStringReference(*f.owner, f.field, &scratch)
                    : r->GetRepeatedStringReference(*f.owner, f.field, f.index, &scratch);
    lengths.push_back(v.size());
  }
  constexpr size_t kMarkerRoom = 48;  // "\n[… N bytes cut by agentd]" and its length prefix
  const size_t excess = size - max_bytes;
  auto removed_at = [&](size_t cap) {  // bytes removed when every text is cut to `cap`
    size_t removed = 0;
    for (size_t n : lengths) {
      if (n > cap + kMarkerRoom) removed += n - cap - kMarkerRoom;
    }
    return removed;
  };
  size_t lo = 0, hi = 0;
  for (size_t n : lengths) hi = std::max(hi, n);
  if (removed_at(0) < excess) {
    hi = 0;  // even cutting every text to nothing is not enough: cut them all
  } else {
    while (lo < hi) {  // the largest cap that still removes enough
      size_t mid = lo + (hi - lo + 1) / 2;
      if (removed_at(mid) >= excess) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
  }
  const size_t cap = hi;
  int64_t cut = 0;
  for (size_t k = 0; k < strings.size(); ++k) {
    if (lengths[k] <= cap + kMarkerRoom) continue;
    std::string v = Get(strings[k]);
    std::string kept = Utf8Prefix(v, cap);
    const int64_t removed = static_cast<int64_t>(v.size()) - static_cast<int64_t>(kept.size());
    Set(strings[k], absl::StrCat(kept, "\n[… ", removed, " bytes cut by agentd]"));
    cut += removed;
  }
  return cut;
}

}  // namespace agentd
