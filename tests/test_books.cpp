// Small TTT-Linear and TTT-MLP models learn real text: `ttt train` on two Gutenberg books (one for
// training, one held out), then `ttt eval`, and `ttt generate` continuing from a saved state. The
// bar is the held-out book's unigram entropy (what a model that ignores the context reaches).
// Needs the books of scripts/setup.sh (data/gutenberg); prints SKIPPED without them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/processes.h"

namespace fs = std::filesystem;
using ttt::testing::run;

namespace {

const fs::path kBooks = TTT_SOURCE_DIR "/data/gutenberg";
const char* kTrainBook = "austen-persuasion.txt";
const char* kHeldOutBook = "carroll-alice.txt";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Entropy of the byte distribution of `text`, in nats.
double unigram_entropy(const std::string& text) {
  std::map<unsigned char, double> counts;
  for (unsigned char c : text) counts[c] += 1;
  double h = 0;
  for (const auto& [c, n] : counts) {
    const double p = n / static_cast<double>(text.size());
    h -= p * std::log(p);
  }
  return h;
}

class Books : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kBooks / kTrainBook) || !fs::exists(kBooks / kHeldOutBook))
      GTEST_SKIP() << "SKIPPED: no books under " << kBooks << " (bash scripts/setup.sh data)";
    dir_ = fs::temp_directory_path() / ("ttt_books_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "books");
    fs::copy_file(kBooks / kTrainBook, dir_ / "books" / kTrainBook);
    fs::copy_file(kBooks / kHeldOutBook, dir_ / "books" / kHeldOutBook);
    // Documents are split whole: of two books, the smaller (Alice) is the validation split.
    ASSERT_EQ(run({"prepare", (dir_ / "books").string(), "--output", (dir_ / "bytes").string(), "--tokenizer", "byte",
                   "--latin1", "--val-fraction", "0.1"},
                  dir_ / "prepare.log"),
              0)
        << read_text(dir_ / "prepare.log");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

}  // namespace

TEST_F(Books, TttLayerModelsLearnHeldOutTextAndContinueFromASavedState) {
  const double unigram = unigram_entropy(read_text(kBooks / kHeldOutBook));
  for (const std::string block : {"ttt_linear", "ttt_mlp"}) {
    const auto log = dir_ / (block + ".log");
    const std::vector<std::string> common{
        "+experiment=ttt-layers/tiny/" + block, "deploy_paths.data.gutenberg=" + (dir_ / "bytes").string(),
        "training.exp_dir=" + (dir_ / "runs").string(), "training.checkpoint_path=" + (dir_ / "ckpt").string(),
        "backend.num_threads=1"};
    std::vector<std::string> train{"train",
                                   "training.seq_length=256",
                                   "training.global_batch_size=8",
                                   "training.eval_batch_size=8",
                                   "training.total_steps=60",
                                   "training.optimizer_outer.lr_warmup_steps=6",
                                   "training.optimizer_outer.lr_decay_steps=60"};
    if (block == "ttt_mlp") train.push_back("model.ttt_base_lr_warmup=6");
    train.insert(train.end(), common.begin(), common.end());
    ASSERT_EQ(run(train, log), 0) << read_text(log);
    const auto eval =
        nlohmann::json::parse(read_text(dir_ / "runs" / "demo" / ("ttt-layers-tiny-" + block) / "eval.json"));
    const double loss = eval.at("loss").get<double>();
    EXPECT_LT(loss, 0.9 * unigram) << block << ": held-out loss " << loss << ", unigram " << unigram;

    // `ttt eval` of the checkpoint gives the end-of-training evaluation's loss.
    const auto checkpoint = (dir_ / "ckpt" / "demo" / ("ttt-layers-tiny-" + block)).string();
    const auto eval_log = dir_ / (block + "-eval.log");
    ASSERT_EQ(run({"eval", "--checkpoint", checkpoint, "backend.num_threads=1"}, eval_log), 0) << read_text(eval_log);
    const std::string printed = read_text(eval_log);
    const auto at = printed.find(" loss ");
    ASSERT_NE(at, std::string::npos) << printed;
    EXPECT_NEAR(std::stod(printed.substr(at + 6)), loss, 1e-5) << printed;  // printed to 6 digits

    // Greedy decoding of one prompt equals reading its first part, saving the state, and reading
    // the rest from the loaded state (the recurrent state crosses a mini-batch boundary: 19 | 18).
    auto generate = [&](const std::vector<std::string>& more, const std::string& name, int new_tokens = 40) {
      std::vector<std::string> args{"generate",
                                    "--checkpoint",
                                    checkpoint,
                                    "--tokenizer",
                                    "byte",
                                    "--temperature",
                                    "0",
                                    "--max-new-tokens",
                                    std::to_string(new_tokens)};
      args.insert(args.end(), more.begin(), more.end());
      const auto out = dir_ / (block + "-" + name + ".txt");
      EXPECT_EQ(run(args, out), 0) << read_text(out);
      return read_text(out);
    };
    const std::string whole = generate({"--prompt", "Alice was beginning to get very tired"}, "whole");
    generate({"--prompt", "Alice was beginning", "--save-state", (dir_ / "state.st").string()}, "first", 0);
    const std::string resumed =
        generate({"--prompt", " to get very tired", "--load-state", (dir_ / "state.st").string()}, "resumed");
    // Each output holds the generated text, then a summary line ending "position N; ...]".
    auto text = [](const std::string& out) { return out.substr(0, out.find("\n[")); };
    auto position = [](const std::string& out) {
      const auto at = out.find("position ");
      return at == std::string::npos ? std::string("none") : out.substr(at, out.find(';', at) - at);
    };
    EXPECT_FALSE(text(whole).empty()) << block;
    EXPECT_EQ(text(whole), text(resumed)) << block;
    EXPECT_EQ(position(whole), position(resumed)) << block;
  }
}
