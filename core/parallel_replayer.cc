// Replay on threads of their own; see parallel_replayer.h.
#include "core/parallel_replayer.h"

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
    shard->thread = std::thread(&ParallelReplayer::Loop, shard.get());
    shards_.push_back(std::move(shard));
  }
}

ParallelReplayer::~ParallelReplayer() { (void)Finish(); }

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
  shard.filling = Chunk();
  shard.filling.ends.reserve(kChunkEvents);
}

absl::Status ParallelReplayer::Finish() {
  if (finished_) return status_;
  finished_ = true;
  for (auto& shard : shards_) {
    if (!shard->filling.ends.empty()) Push(*shard);
    absl::MutexLock lock(&shard->mu);
    shard->closed = true;
  }
  uint64_t first_bad = 0;
  for (auto& shard : shards_) {
    shard->thread.join();
    absl::MutexLock lock(&shard->mu);
    if (!shard->status.ok() && (first_bad == 0 || shard->failed_at < first_bad)) {
      first_bad = shard->failed_at;
      status_ = shard->status;
    }
  }
  return status_;
}

void ParallelReplayer::Loop(Shard* shard) {
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
    }
    size_t begin = 0;
    for (size_t i = 0; i < chunk.ends.size(); ++i) {
      absl::Status s = shard->verifier.Replay(
          chunk.sequences[i],
          absl::string_view(chunk.data).substr(begin, chunk.ends[i] - begin));
      begin = chunk.ends[i];
      if (!s.ok()) {
        absl::MutexLock lock(&shard->mu);
        shard->status = s;
        shard->failed_at = chunk.sequences[i];
        shard->chunks.clear();
        return;
      }
    }
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
