// Replay on threads of their own; see parallel_replayer.h.
#include "core/parallel_replayer.h"

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "absl/hash/hash.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace permit::core {

absl::string_view CaseIdOfEvent(absl::string_view bytes) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(v1::Event::kCaseIdFieldNumber,
                                       WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      uint32_t len = 0;
      const void* data = nullptr;
      int size = 0;
      if (!in.ReadVarint32(&len) || !in.GetDirectBufferPointer(&data, &size) ||
          static_cast<uint32_t>(size) < len) {
        return {};
      }
      return absl::string_view(static_cast<const char*>(data), len);
    }
    if (!WireFormatLite::SkipField(&in, tag)) return {};
  }
  return {};
}

ParallelReplayer::ParallelReplayer(int shards) {
  if (shards < 1) shards = 1;
  for (int i = 0; i < shards; ++i) {
    auto shard = std::make_unique<Shard>();
    if (shards > 1) shard->verifier.SetShard();
    shard->filling.ends.reserve(kChunkEvents);
    shard->filling.sequences.reserve(kChunkEvents);
    shard->thread = std::thread(&ParallelReplayer::Loop, shard.get());
    shards_.push_back(std::move(shard));
  }
}

ParallelReplayer::~ParallelReplayer() {
  (void)Drain();
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->closed = true;
  }
  for (auto& shard : shards_) shard->thread.join();
}

ParallelReplayer::Shard& ParallelReplayer::ShardOf(absl::string_view case_id) {
  if (shards_.size() == 1) return *shards_[0];
  return *shards_[absl::HashOf(case_id) % shards_.size()];
}

bool ParallelReplayer::Add(uint64_t sequence, absl::string_view bytes) {
  if (failed_) return false;
  Shard& shard = ShardOf(shards_.size() == 1 ? absl::string_view() : CaseIdOfEvent(bytes));
  shard.filling.data.append(bytes.data(), bytes.size());
  shard.filling.ends.push_back(shard.filling.data.size());
  shard.filling.sequences.push_back(sequence);
  if (shard.filling.ends.size() < kChunkEvents) return true;
  Push(shard);
  return !failed_;
}

void ParallelReplayer::Push(Shard& shard) {
  absl::MutexLock lock(&shard.mu);
  auto room = [&shard]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
    return shard.chunks.size() < kMaxChunks || !shard.status.ok();
  };
  shard.mu.Await(absl::Condition(&room));
  if (!shard.status.ok()) {
    failed_ = true;
  } else {
    shard.chunks.push_back(std::move(shard.filling));
  }
  if (!shard.spare.empty()) {
    shard.filling = std::move(shard.spare.back());
    shard.spare.pop_back();
  } else {
    shard.filling = Chunk();
    shard.filling.ends.reserve(kChunkEvents);
    shard.filling.sequences.reserve(kChunkEvents);
  }
}

absl::Status ParallelReplayer::Finish() {
  if (finished_) return status_;
  finished_ = true;
  status_ = Drain();
  return status_;
}

absl::Status ParallelReplayer::Drain() {
  for (auto& shard : shards_) {
    if (!shard->filling.ends.empty()) Push(*shard);
  }
  uint64_t first_bad = 0;
  absl::Status status;
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    Shard* s = shard.get();
    auto idle = [s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
      return (s->chunks.empty() && !s->busy) || !s->status.ok();
    };
    shard->mu.Await(absl::Condition(&idle));
    if (!shard->status.ok() && (first_bad == 0 || shard->failed_at < first_bad)) {
      first_bad = shard->failed_at;
      status = shard->status;
    }
  }
  return status;
}

bool ParallelReplayer::AddSnapshot(absl::string_view id, absl::string_view bytes) {
  if (failed_) return false;
  Shard& shard = ShardOf(shards_.size() == 1 ? absl::string_view() : id);
  Chunk& f = shard.filling;
  f.snapshots = true;
  f.data.append(id.data(), id.size());
  f.data.append(bytes.data(), bytes.size());
  f.ends.push_back(f.data.size());
  f.id_sizes.push_back(id.size());
  f.sequences.push_back(++snapshots_);
  if (f.ends.size() < kChunkEvents) return true;
  Push(shard);
  return !failed_;
}

absl::Status ParallelReplayer::FinishSnapshots() {
  absl::Status s = Drain();
  if (!s.ok()) failed_ = true;
  return s;
}

void ParallelReplayer::Loop(Shard* shard) {
#ifdef __linux__
  // The caller's thread (reading and hashing) is the pipeline's critical
  // path and these threads keep up with it on less than a core each: when
  // the cores are oversubscribed, let them yield to it.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 5);
#endif
  for (;;) {
    Chunk chunk;
    {
      absl::MutexLock lock(&shard->mu);
      auto ready = [shard]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard->mu) {
        return !shard->chunks.empty() || shard->closed;
      };
      shard->mu.Await(absl::Condition(&ready));
      if (shard->chunks.empty()) return;
      chunk = std::move(shard->chunks.front());
      shard->chunks.pop_front();
      shard->busy = true;
    }
    size_t begin = 0;
    for (size_t i = 0; i < chunk.ends.size(); ++i) {
      const absl::string_view entry =
          absl::string_view(chunk.data).substr(begin, chunk.ends[i] - begin);
      begin = chunk.ends[i];
      absl::Status s =
          chunk.snapshots
              ? shard->verifier.CheckSnapshotBytes(entry.substr(0, chunk.id_sizes[i]),
                                                   entry.substr(chunk.id_sizes[i]))
              : shard->verifier.Replay(chunk.sequences[i], entry);
      if (!s.ok()) {
        absl::MutexLock lock(&shard->mu);
        shard->status = s;
        shard->failed_at = chunk.sequences[i];
        shard->chunks.clear();
        return;
      }
    }
    chunk.data.clear();
    chunk.ends.clear();
    chunk.sequences.clear();
    chunk.id_sizes.clear();
    chunk.snapshots = false;
    absl::MutexLock lock(&shard->mu);
    shard->busy = false;
    if (shard->spare.size() < kMaxChunks) shard->spare.push_back(std::move(chunk));
  }
}

size_t ParallelReplayer::case_count() const {
  size_t n = 0;
  for (const auto& shard : shards_) n += shard->verifier.case_count();
  return n;
}

std::vector<std::string> ParallelReplayer::CaseIds() const {
  std::vector<std::string> ids;
  for (const auto& shard : shards_) {
    std::vector<std::string> more = shard->verifier.CaseIds();
    ids.insert(ids.end(), more.begin(), more.end());
  }
  return ids;
}

absl::Status ParallelReplayer::CheckSnapshotBytes(absl::string_view id,
                                                  absl::string_view bytes) {
  return ShardOf(shards_.size() == 1 ? absl::string_view() : id)
      .verifier.CheckSnapshotBytes(id, bytes);
}

absl::Status ParallelReplayer::CheckSnapshot(const v1::Case& stored) {
  return ShardOf(shards_.size() == 1 ? absl::string_view() : stored.id())
      .verifier.CheckSnapshot(stored);
}

}  // namespace permit::core
