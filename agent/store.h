// The stores: where pod and container records live, in memory and on disk.
//
// A record changes only through Update(id, fn): fn edits the current record
// under that record's update lock, the result is written to disk, then made
// visible and published, before the next Update of the same record may
// start. Two writers can therefore never overwrite each other's change (the
// lost update of a read-change-save done by hand: a container's exit
// recorded by its watcher, then undone by an UpdateContainerResources that
// had read the record before it). Readers (Get, List, ForEach) see a record
// before or after an update, never half of one, and never wait for a disk
// write. Updates of different records run in parallel.
//
// NameRegistry is the name registrar: which ID holds a pod or container
// name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/files.h"

namespace podshim::agent {

// How a store keeps its records on disk; a fake in tests.
class RecordFiles {
 public:
  virtual ~RecordFiles() = default;
  // Replaces the file of record `id` with `text`, durably.
  virtual absl::Status Write(const std::string& id, const std::string& text) = 0;
  // Removes the file of record `id`; absent is fine.
  virtual absl::Status Remove(const std::string& id) = 0;
};

// One JSON file per record: <dir>/<id>.json.
class DirRecordFiles final : public RecordFiles {
 public:
  explicit DirRecordFiles(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Write(const std::string& id, const std::string& text) override {
    return runtime::WriteFileAtomic(Path(id), text);
  }
  absl::Status Remove(const std::string& id) override { return runtime::RemoveFile(Path(id)); }
  std::string Path(absl::string_view id) const { return absl::StrCat(dir_, "/", id, ".json"); }

 private:
  std::string dir_;
};

// Record: a copyable struct with a std::string `id`.
template <typename Record>
class RecordStore {
 public:
  // What the store calls back: `to_json` serialises a record for its file;
  // `published` (may be empty) sees each change once it is visible, in the
  // order of the changes of that record: (null, r) for an Add, (before,
  // after) for an Update, (r, null) for a Remove. It runs under the
  // record's update lock, so it may read any store but must not update
  // this record.
  struct Hooks {
    std::function<std::string(const Record&)> to_json;
    std::function<void(const Record* before, const Record* after)> published;
  };

  RecordStore(std::unique_ptr<RecordFiles> files, Hooks hooks, std::string what)
      : files_(std::move(files)), hooks_(std::move(hooks)), what_(std::move(what)) {}
  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  // A record read from disk at start: kept, neither written nor published.
  void Load(Record r) {
    absl::MutexLock lock(&mu_);
    std::string id = r.id;
    records_.insert_or_assign(std::move(id), std::move(r));
  }

  // Writes `r` to disk without making it visible: the intent of an object
  // being made, so that a crash half way names what to clean up. Add makes
  // it visible; Remove removes the file if it never was.
  absl::Status WriteIntent(const Record& r) { return files_->Write(r.id, hooks_.to_json(r)); }

  // A new record: written, made visible, published. ALREADY_EXISTS if the
  // ID is taken.
  absl::Status Add(const Record& r) {
    auto update_mu = UpdateLock(r.id);
    absl::MutexLock update(update_mu.get());
    {
      absl::MutexLock lock(&mu_);
      if (records_.contains(r.id)) {
        return absl::AlreadyExistsError(absl::StrCat(what_, " `", r.id, "` already exists"));
      }
    }
    if (auto s = files_->Write(r.id, hooks_.to_json(r)); !s.ok()) return s;
    {
      absl::MutexLock lock(&mu_);
      records_.emplace(r.id, r);
      changed_.SignalAll();
    }
    if (hooks_.published) hooks_.published(nullptr, &r);
    return absl::OkStatus();
  }

  // The only way to change a record: `fn` edits the current record; if it
  // returns OK the result is written, made visible and published, else
  // nothing changes and its status is returned. NOT_FOUND if there is no
  // such record. Returns the record as it now is.
  absl::StatusOr<Record> Update(const std::string& id,
                                absl::FunctionRef<absl::Status(Record&)> fn) {
    auto update_mu = UpdateLock(id);
    absl::MutexLock update(update_mu.get());
    auto before = Get(id);
    if (!before.ok()) {
      ForgetUpdateLock(id, update_mu);  // an update of a record that is gone leaves nothing
      return before.status();
    }
    Record after = *before;
    if (auto s = fn(after); !s.ok()) return s;
    after.id = id;  // the key is not fn's to change
    if (auto s = files_->Write(id, hooks_.to_json(after)); !s.ok()) return s;
    {
      absl::MutexLock lock(&mu_);
      records_.insert_or_assign(id, after);
      changed_.SignalAll();
    }
    if (hooks_.published) hooks_.published(&*before, &after);
    return after;
  }

  // Removes the record and its file (a record never added: its intent
  // file); absent is fine.
  absl::Status Remove(const std::string& id) {
    auto update_mu = UpdateLock(id);
    absl::MutexLock update(update_mu.get());
    if (auto s = files_->Remove(id); !s.ok()) return s;
    std::optional<Record> gone;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = records_.find(id); it != records_.end()) {
        gone = std::move(it->second);
        records_.erase(it);
      }
      update_locks_.erase(id);  // holders keep their shared_ptr
      changed_.SignalAll();
    }
    if (gone.has_value() && hooks_.published) hooks_.published(&*gone, nullptr);
    return absl::OkStatus();
  }

  absl::StatusOr<Record> Get(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(id);
    if (it == records_.end()) {
      return absl::NotFoundError(absl::StrCat(what_, " `", id, "` not found"));
    }
    return it->second;
  }

  bool Contains(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    return records_.contains(id);
  }

  // The unique ID that `id_or_prefix` names (request field `field`):
  // INVALID_ARGUMENT when empty or ambiguous, NOT_FOUND when none.
  absl::StatusOr<std::string> Resolve(absl::string_view id_or_prefix, const char* field) const {
    if (id_or_prefix.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
    }
    absl::MutexLock lock(&mu_);
    if (records_.contains(std::string(id_or_prefix))) return std::string(id_or_prefix);
    std::string found;
    for (auto it = records_.lower_bound(std::string(id_or_prefix));
         it != records_.end() && absl::StartsWith(it->first, id_or_prefix); ++it) {
      if (!found.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": `", id_or_prefix, "` names more than one ", what_));
      }
      found = it->first;
    }
    if (found.empty()) {
      return absl::NotFoundError(
          absl::StrCat(what_, " `", id_or_prefix, "` not found (", field, ")"));
    }
    return found;
  }

  // Copies of the records `keep` accepts, in ID order.
  std::vector<Record> List(absl::FunctionRef<bool(const Record&)> keep) const {
    absl::MutexLock lock(&mu_);
    std::vector<Record> out;
    for (const auto& [id, r] : records_) {
      if (keep(r)) out.push_back(r);
    }
    return out;
  }

  // Calls `fn` on each record in ID order, under the store's read lock: `fn`
  // must be quick and must not call into this store.
  void ForEach(absl::FunctionRef<void(const Record&)> fn) const {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : records_) fn(r);
  }

  // Update locks held now (for tests: none is left for a record that is gone).
  size_t update_locks() const {
    absl::MutexLock lock(&mu_);
    return update_locks_.size();
  }

  // Waits until `done` holds for record `id` (null once it is gone) or
  // `deadline` passes; returns whether it holds.
  bool WaitUntil(const std::string& id, absl::FunctionRef<bool(const Record*)> done,
                 absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    for (;;) {
      auto it = records_.find(id);
      if (done(it == records_.end() ? nullptr : &it->second)) return true;
      if (changed_.WaitWithDeadline(&mu_, deadline)) {
        it = records_.find(id);
        return done(it == records_.end() ? nullptr : &it->second);
      }
    }
  }

 private:
  // Drops the update lock of `id` if it is `mu` and the record is gone
  // (holders keep their shared_ptr).
  void ForgetUpdateLock(const std::string& id, const std::shared_ptr<absl::Mutex>& mu) {
    absl::MutexLock lock(&mu_);
    if (records_.contains(id)) return;
    if (auto it = update_locks_.find(id); it != update_locks_.end() && it->second == mu) {
      update_locks_.erase(it);
    }
  }

  std::shared_ptr<absl::Mutex> UpdateLock(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto& m = update_locks_[id];
    if (!m) m = std::make_shared<absl::Mutex>();
    return m;
  }

  const std::unique_ptr<RecordFiles> files_;
  const Hooks hooks_;
  const std::string what_;  // "pod sandbox", "container": for messages
  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  std::map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  // One per record with an update in progress or done; Remove drops it, and
  // so does an Update that finds no record.
  std::map<std::string, std::shared_ptr<absl::Mutex>> update_locks_ ABSL_GUARDED_BY(mu_);
};

// Which ID holds each name (a pod's or container's name key).
class NameRegistry {
 public:
  // Reserves `name` for `id`; ALREADY_EXISTS naming the holder if taken
  // by another ID (`what`: "pod sandbox name").
  absl::Status Reserve(const std::string& name, const std::string& id, absl::string_view what);
  // The ID holding `name`, or "" if none.
  std::string Holder(const std::string& name) const;
  // Frees `name` if `id` holds it.
  void Release(const std::string& name, const std::string& id);
  // Frees every name `id` holds.
  void ReleaseId(const std::string& id);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> holders_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::agent
