// Conversions between absl time and the protobuf well-known time types, for the core.
#ifndef AGENTD_MANAGER_CORE_PROTO_TIME_H_
#define AGENTD_MANAGER_CORE_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace agentd {

inline void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t us = absl::ToUnixMicros(t);
  int64_t s = us / 1000000, rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --s;
  }
  ts->set_seconds(s);
  ts->set_nanos(static_cast<int32_t>(rem * 1000));
}

inline absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

inline void SetDuration(absl::Duration d, google::protobuf::Duration* pd) {
  int64_t ns = absl::ToInt64Nanoseconds(d);
  pd->set_seconds(ns / 1000000000);
  pd->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_PROTO_TIME_H_
