// `ttt prepare`: text files or directories in, a tokenized zarr dataset (train/val) out.
#include <iostream>

#include "commands.h"
#include "data/prepare.h"
#include "tokenizer/tokenizer.h"

namespace ttt::cli {

Run add_prepare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "prepare", "Tokenize text documents into a zarr v3 dataset with train/val arrays (the official layout)");
  auto o = std::make_shared<PrepareOptions>();
  auto tokenizer = std::make_shared<std::string>("byte");
  cmd->add_option("inputs", o->inputs,
                  "Text files, or directories whose *.txt files are read (one file = one document)")
      ->required();
  cmd->add_option("-o,--output", o->output, "Dataset directory to create (a zarr group)")->required();
  cmd->add_option("--tokenizer", *tokenizer, "'byte' or the path of a Hugging Face tokenizer.json (or its directory)")
      ->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction, "Share of documents held out as the val split (seeded draw)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the document split")->capture_default_str();
  cmd->add_option("--min-document-tokens", o->min_document_tokens,
                  "Drop documents shorter than this many tokens (BOS and EOS included)")
      ->capture_default_str();
  cmd->add_option("--chunk-length", o->chunk_length, "Tokens per zarr chunk")->capture_default_str();
  cmd->add_option("--dtype", o->dtype,
                  "Array dtype: auto (uint16 if the vocabulary fits, else uint32), int32, uint32, int64, uint16")
      ->capture_default_str();
  cmd->add_flag("--latin1", o->latin1_fallback,
                "Read files that are not valid UTF-8 as Latin-1 (without it they are an error naming the byte offset)");
  cmd->add_flag("--overwrite", o->overwrite, "Replace an existing dataset (only once the new one is complete)");
  return [o, tokenizer]() {
    const auto tok = load_tokenizer(*tokenizer);
    const PrepareReport r = prepare_dataset(*o, *tok);
    std::cout << "prepared " << o->output << " with " << tok->name() << ": " << r.train_documents << " train / "
              << r.val_documents << " val documents, " << r.train_tokens << " / " << r.val_tokens << " tokens";
    if (r.dropped) std::cout << ", " << r.dropped << " dropped as too short";
    std::cout << " (" << r.input_bytes << " bytes in " << r.seconds << " s)" << std::endl;
    for (const auto& f : r.latin1_files) std::cout << "read as Latin-1: " << f << std::endl;
    return 0;
  };
}

}  // namespace ttt::cli
