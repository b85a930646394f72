#pragma once
// The tables programs are scored on. A truth table keeps each Boolean input column and the target as bit
// vectors, 64 rows to a word, so that a Boolean subtree is evaluated over 64 rows with one machine
// instruction; a data table keeps continuous columns contiguous for the same reason. A labelled table has
// continuous columns and a Boolean label per row, packed as a truth table's target: a predicate turns a
// column into bits once, and the Boolean tree above it runs 64 rows to a word again.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat::cog::moses {

/// One bit per table row, packed 64 to a word (row r is bit r % 64 of word r / 64). Bits past size() in the
/// last word are unspecified: operations that read them (count, ==) mask them off.
class row_bits {
public:
    row_bits() = default;
    /// `rows` bits, all false.
    explicit row_bits(std::size_t rows) : size_(rows), words_((rows + 63) / 64, 0) {}

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t word_count() const noexcept { return words_.size(); }
    [[nodiscard]] std::span<std::uint64_t> words() noexcept { return words_; }
    [[nodiscard]] std::span<const std::uint64_t> words() const noexcept { return words_; }

    /// Bit of row r; r must be below size().
    [[nodiscard]] bool test(std::size_t r) const noexcept { return (words_[r / 64] >> (r % 64)) & 1u; }
    void set(std::size_t r, bool b) noexcept {
        const std::uint64_t m = std::uint64_t{1} << (r % 64);
        words_[r / 64] = b ? (words_[r / 64] | m) : (words_[r / 64] & ~m);
    }

    /// Mask of the valid bits of the last word (all ones when size() is a multiple of 64).
    [[nodiscard]] std::uint64_t tail_mask() const noexcept {
        return size_ % 64 == 0 ? ~std::uint64_t{0} : (std::uint64_t{1} << (size_ % 64)) - 1;
    }

    /// Number of true rows.
    [[nodiscard]] std::size_t count() const noexcept {
        std::size_t n = 0;
        for (std::size_t w = 0; w < words_.size(); ++w)
            n += static_cast<std::size_t>(std::popcount(w + 1 == words_.size() ? words_[w] & tail_mask() : words_[w]));
        return n;
    }

    friend bool operator==(const row_bits& a, const row_bits& b) noexcept {
        if (a.size_ != b.size_) return false;
        for (std::size_t w = 0; w < a.words_.size(); ++w) {
            const std::uint64_t m = w + 1 == a.words_.size() ? a.tail_mask() : ~std::uint64_t{0};
            if ((a.words_[w] ^ b.words_[w]) & m) return false;
        }
        return true;
    }

private:
    std::size_t size_ = 0;
    std::vector<std::uint64_t> words_;
};

/// Number of rows where `a` and `b` differ; both must have `rows` bits. `a` may be a raw word array (the
/// evaluator's scratch), so the tail is masked here.
[[nodiscard]] inline std::size_t mismatches(std::span<const std::uint64_t> a, std::span<const std::uint64_t> b, std::size_t rows) noexcept {
    std::size_t n = 0;
    const std::size_t words = (rows + 63) / 64;
    for (std::size_t w = 0; w < words; ++w) {
        std::uint64_t x = a[w] ^ b[w];
        if (w + 1 == words && rows % 64 != 0) x &= (std::uint64_t{1} << (rows % 64)) - 1;
        n += static_cast<std::size_t>(std::popcount(x));
    }
    return n;
}

/// Boolean inputs and a Boolean target, one row per case.
class truth_table {
public:
    /// Largest arity of a complete table (2^20 rows).
    static constexpr std::size_t max_complete_arity = 20;

    truth_table() = default;

    /// From explicit rows: inputs[r] holds row r's inputs, outputs[r] its target. Throws shape_error when the
    /// row count differs from the output count or a row's length differs from the first row's, and
    /// invalid_argument_error when there are no rows.
    truth_table(const std::vector<std::vector<bool>>& inputs, const std::vector<bool>& outputs) {
        if (inputs.size() != outputs.size()) {
            throw shape_error("truth_table: " + std::to_string(inputs.size()) + " input rows but " + std::to_string(outputs.size()) +
                              " outputs");
        }
        if (inputs.empty()) throw invalid_argument_error("truth_table: no rows");
        init(inputs.front().size(), inputs.size());
        for (std::size_t r = 0; r < inputs.size(); ++r) {
            if (inputs[r].size() != arity_) {
                throw shape_error("truth_table: row " + std::to_string(r) + " has " + std::to_string(inputs[r].size()) +
                                  " inputs, row 0 has " + std::to_string(arity_));
            }
            for (std::size_t i = 0; i < arity_; ++i) set_bit(columns_[i], r, inputs[r][i]);
            target_.set(r, outputs[r]);
        }
    }

    /// The complete table of a function of `arity` inputs (2^arity rows). Row r gives input i the value of
    /// bit i of r; `f(r)` is its target. Throws invalid_argument_error when arity is 0 or above
    /// max_complete_arity.
    template <class F>
    static truth_table complete(std::size_t arity, F&& f) {
        if (arity == 0 || arity > max_complete_arity) {
            throw invalid_argument_error("truth_table::complete: arity " + std::to_string(arity) + " is outside 1.." +
                                         std::to_string(max_complete_arity));
        }
        truth_table t;
        const std::size_t rows = std::size_t{1} << arity;
        t.init(arity, rows);
        for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t i = 0; i < arity; ++i) set_bit(t.columns_[i], r, (r >> i) & 1u);
            t.target_.set(r, static_cast<bool>(f(static_cast<std::uint32_t>(r))));
        }
        return t;
    }

    [[nodiscard]] std::size_t arity() const noexcept { return arity_; }
    [[nodiscard]] std::size_t rows() const noexcept { return target_.size(); }
    /// Words per column: (rows + 63) / 64.
    [[nodiscard]] std::size_t word_count() const noexcept { return target_.word_count(); }
    /// Column of input i (0-based) as packed words; i must be below arity().
    [[nodiscard]] std::span<const std::uint64_t> column(std::size_t i) const noexcept { return columns_[i].words(); }
    [[nodiscard]] const row_bits& target() const noexcept { return target_; }

private:
    void init(std::size_t arity, std::size_t rows) {
        arity_ = arity;
        columns_.assign(arity, row_bits(rows));
        target_ = row_bits(rows);
    }
    static void set_bit(row_bits& b, std::size_t r, bool v) noexcept { b.set(r, v); }

    std::size_t arity_ = 0;
    std::vector<row_bits> columns_;
    row_bits target_;
};

/// Continuous inputs and a continuous target.
class data_table {
public:
    data_table() = default;

    /// From rows: inputs[r] holds row r's inputs, targets[r] its target. Throws shape_error on mismatched
    /// sizes, invalid_argument_error when there are no rows, and value_error (index = row) on NaN or Inf.
    data_table(const std::vector<std::vector<double>>& inputs, const std::vector<double>& targets) {
        if (inputs.size() != targets.size()) {
            throw shape_error("data_table: " + std::to_string(inputs.size()) + " input rows but " + std::to_string(targets.size()) +
                              " targets");
        }
        if (inputs.empty()) throw invalid_argument_error("data_table: no rows");
        arity_ = inputs.front().size();
        rows_ = inputs.size();
        columns_.assign(arity_ * rows_, 0.0);
        targets_ = targets;
        for (std::size_t r = 0; r < rows_; ++r) {
            if (inputs[r].size() != arity_) {
                throw shape_error("data_table: row " + std::to_string(r) + " has " + std::to_string(inputs[r].size()) +
                                  " inputs, row 0 has " + std::to_string(arity_));
            }
            for (std::size_t i = 0; i < arity_; ++i) {
                if (!std::isfinite(inputs[r][i]))
                    throw value_error("data_table: input " + std::to_string(i + 1) + " of row " + std::to_string(r) + " is not finite", r);
                columns_[i * rows_ + r] = inputs[r][i];
            }
            if (!std::isfinite(targets[r])) throw value_error("data_table: the target of row " + std::to_string(r) + " is not finite", r);
        }
    }

    [[nodiscard]] std::size_t arity() const noexcept { return arity_; }
    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    /// Column of input i (0-based); i must be below arity().
    [[nodiscard]] std::span<const double> column(std::size_t i) const noexcept {
        return std::span<const double>(columns_).subspan(i * rows_, rows_);
    }
    [[nodiscard]] std::span<const double> targets() const noexcept { return targets_; }

private:
    std::size_t arity_ = 0;
    std::size_t rows_ = 0;
    std::vector<double> columns_;  // column-major: input i occupies [i * rows, (i + 1) * rows)
    std::vector<double> targets_;
};

/// Continuous inputs and a Boolean label per row: what mixed programs (Boolean trees over greater_than
/// predicates) are scored on.
class labelled_table {
public:
    labelled_table() = default;

    /// From rows: inputs[r] holds row r's inputs, labels[r] its label. Throws shape_error on mismatched sizes
    /// or no inputs, invalid_argument_error when there are no rows, and value_error (index = row) on NaN or Inf.
    labelled_table(const std::vector<std::vector<double>>& inputs, const std::vector<bool>& labels) {
        if (inputs.size() != labels.size()) {
            throw shape_error("labelled_table: " + std::to_string(inputs.size()) + " input rows but " + std::to_string(labels.size()) +
                              " labels");
        }
        if (inputs.empty()) throw invalid_argument_error("labelled_table: no rows");
        arity_ = inputs.front().size();
        if (arity_ == 0) throw shape_error("labelled_table: row 0 has no inputs");
        rows_ = inputs.size();
        columns_.assign(arity_ * rows_, 0.0);
        target_ = row_bits(rows_);
        for (std::size_t r = 0; r < rows_; ++r) {
            if (inputs[r].size() != arity_) {
                throw shape_error("labelled_table: row " + std::to_string(r) + " has " + std::to_string(inputs[r].size()) +
                                  " inputs, row 0 has " + std::to_string(arity_));
            }
            for (std::size_t i = 0; i < arity_; ++i) {
                if (!std::isfinite(inputs[r][i])) {
                    throw value_error("labelled_table: input " + std::to_string(i + 1) + " of row " + std::to_string(r) + " is not finite",
                                      r);
                }
                columns_[i * rows_ + r] = inputs[r][i];
            }
            target_.set(r, labels[r]);
        }
    }

    [[nodiscard]] std::size_t arity() const noexcept { return arity_; }
    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    /// Words of a packed Boolean column: (rows + 63) / 64.
    [[nodiscard]] std::size_t word_count() const noexcept { return target_.word_count(); }
    /// Column of input i (0-based); i must be below arity().
    [[nodiscard]] std::span<const double> column(std::size_t i) const noexcept {
        return std::span<const double>(columns_).subspan(i * rows_, rows_);
    }
    /// The labels, packed as a truth table's target.
    [[nodiscard]] const row_bits& target() const noexcept { return target_; }

private:
    std::size_t arity_ = 0;
    std::size_t rows_ = 0;
    std::vector<double> columns_;  // column-major, as data_table's
    row_bits target_;
};

/// Bits of greater_than over a column: bit r of `out` is column[r] > threshold (false for the bits past the
/// last row). `out` holds (column.size() + 63) / 64 words.
inline void greater_than_bits(std::span<const double> column, double threshold, std::span<std::uint64_t> out) noexcept {
    const std::size_t rows = column.size();
    for (std::size_t w = 0; w < out.size(); ++w) {
        std::uint64_t word = 0;
        const std::size_t end = std::min(rows, (w + 1) * 64);
        for (std::size_t r = w * 64; r < end; ++r) word |= static_cast<std::uint64_t>(column[r] > threshold) << (r % 64);
        out[w] = word;
    }
}

}  // namespace cogqat::cog::moses
