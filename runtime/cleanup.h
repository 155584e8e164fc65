// Undo steps for a multi-step setup: each step that made something pushes
// how to take it back; on failure the stack is destroyed (or Run()) and the
// steps run last-in first-out; on success Release() forgets them.
//
// The one undo stack of podshim: SetUpPod (runtime/pod_setup.cc), podshim-pinns
// and the bridge CNI plugin's ADD use it. Header-only and the standard library
// alone, so the static helpers can use it. For a single step, absl::Cleanup
// does as well.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace podshim::runtime {

class UndoStack {
 public:
  UndoStack() = default;
  UndoStack(const UndoStack&) = delete;
  UndoStack& operator=(const UndoStack&) = delete;
  ~UndoStack() { Run(); }

  void Push(std::function<void()> step) { steps_.push_back(std::move(step)); }
  // Success: the steps are dropped without running.
  void Release() { steps_.clear(); }
  // Runs the steps now, last first; a step may push more (they run too).
  void Run() {
    while (!steps_.empty()) {
      std::function<void()> step = std::move(steps_.back());
      steps_.pop_back();
      step();
    }
  }
  bool empty() const { return steps_.empty(); }

 private:
  std::vector<std::function<void()>> steps_;
};

}  // namespace podshim::runtime
