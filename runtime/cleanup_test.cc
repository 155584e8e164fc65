#include "runtime/cleanup.h"

#include <string>

#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

TEST(UndoStack, RunsLastInFirstOutWhenDestroyed) {
  std::string order;
  {
    UndoStack undo;
    undo.Push([&] { order += "a"; });
    undo.Push([&] { order += "b"; });
    undo.Push([&] { order += "c"; });
    EXPECT_EQ(order, "");
  }
  EXPECT_EQ(order, "cba");
}

TEST(UndoStack, ReleaseForgetsTheSteps) {
  std::string order;
  {
    UndoStack undo;
    undo.Push([&] { order += "a"; });
    undo.Release();
    EXPECT_TRUE(undo.empty());
    undo.Push([&] { order += "b"; });  // pushed after Release: still undone
  }
  EXPECT_EQ(order, "b");
}

TEST(UndoStack, RunRunsEachStepOnce) {
  int runs = 0;
  UndoStack undo;
  undo.Push([&] { ++runs; });
  undo.Run();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(undo.empty());
  undo.Run();
  EXPECT_EQ(runs, 1);
}

TEST(UndoStack, AStepMayPushMore) {
  std::string order;
  {
    UndoStack undo;
    undo.Push([&] { order += "a"; });
    undo.Push([&] {
      order += "b";
      undo.Push([&] { order += "c"; });
    });
  }
  EXPECT_EQ(order, "bca");
}

}  // namespace
}  // namespace podshim::runtime
