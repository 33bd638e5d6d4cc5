// The safetensors format (an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data), so weights written here
// open in any safetensors library and the reverse.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ttt {

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;  // CPU, contiguous
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (moved to CPU, made contiguous) in the given order. Not atomic by itself:
// callers write into a temporary location and rename.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Throws std::runtime_error naming the file for a truncated file, a bad header, an unsupported
// dtype or byte ranges that do not match shapes or overlap the end of the file.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace ttt
