#pragma once
// ECAN (economic attention networks) over an AtomSpace: an AttentionBank keeps an attention value per atom,
// STI and LTI funds, and runs OpenCog's attention agents as deterministic steps:
//
//   stimulate      an atom earns wage * stimulus of STI and LTI, paid from the funds; the wage rises when
//                  the funds are above their target and falls below it (AttentionBank::stimulate)
//   update_focus   the attentional focus is the top-K atoms by STI (K = focus_size)
//   create_hebbian_links / update_hebbian_links
//                  AsymmetricHebbianLinks between atoms that share the focus; their strength follows how
//                  much both are in focus (HebbianCreationAgent, HebbianUpdatingAgent)
//   diffuse        each focus atom spreads max_spread_fraction of its STI to its incoming and outgoing
//                  neighbours and, by up to hebbian_max_allocation, along its Hebbian links
//                  (ImportanceDiffusionBase, AFImportanceDiffusionAgent)
//   collect_rent   focus atoms pay rent back to the funds when the funds are below target (AFRentCollectionAgent)
//   forget         above a size limit, the lowest-LTI disposable atoms are removed (ForgettingAgent)
//
// Every change of an atom's STI or LTI moves the difference out of (or into) the funds, so that
// STI funds + sum of STI and LTI funds + sum of LTI stay at their starting values, whatever the value type
// rounds or saturates. Where OpenCog picks at random (which Hebbian link to drop, which atom to update) or
// runs agents on timers, this bank is deterministic; the deviations are listed in docs/COGNITIVE.md.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/attention_value.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// ECAN's parameters. Defaults are OpenCog's: the AttentionBank constructor (funds, targets, buffers,
/// wages, focus size) and opencog/attention's default-param-values.scm and agents (the rest).
struct ecan_parameters {
    // Funds -------------------------------------------------------------------------------------------
    double starting_sti_funds = 100000.0;  ///< startingFundsSTI
    double starting_lti_funds = 100000.0;  ///< startingFundsLTI
    double target_sti_funds = 10000.0;     ///< targetSTI / TARGET_STI_FUNDS
    double target_lti_funds = 10000.0;     ///< targetLTI / TARGET_LTI_FUNDS
    double sti_funds_buffer = 10000.0;     ///< stiFundsBuffer / STI_FUNDS_BUFFER (> 0)
    double lti_funds_buffer = 10000.0;     ///< ltiFundsBuffer / LTI_FUNDS_BUFFER (> 0)
    // Wages and rent ----------------------------------------------------------------------------------
    double sti_wage = 10.0;  ///< STIAtomWage: the wage at target funds; it ranges over [0, 2 wage]
    double lti_wage = 10.0;  ///< LTIAtomWage
    double sti_rent = 1.0;   ///< STARTING_ATOM_STI_RENT: the rent at target funds
    double lti_rent = 1.0;   ///< STARTING_ATOM_LTI_RENT
    // Attentional focus -------------------------------------------------------------------------------
    std::size_t focus_size = 100;  ///< maxAFSize: K of the top-K focus
    // Diffusion ---------------------------------------------------------------------------------------
    double max_spread_fraction = 0.4;  ///< MAX_SPREAD_PERCENTAGE: share of a focus atom's STI spread per cycle, in [0, 1]
    double hebbian_max_allocation =
            0.05;                      ///< HEBBIAN_MAX_ALLOCATION_PERCENTAGE: most of that share that goes along Hebbian links, in [0, 1]
    bool spread_hebbian_only = false;  ///< SPREAD_HEBBIAN_ONLY: spread along Hebbian links only
    // Hebbian links -----------------------------------------------------------------------------------
    std::size_t max_hebbian_links = 300;  ///< MAX_LINKS: Hebbian links per atom before the weakest are dropped
    double hebbian_decay = 0.1;           ///< tcDecayRate: weight of the new evidence in an update, in [0, 1]
    float new_hebbian_strength = 0.5f;    ///< truth value of a new Hebbian link (addHebbian: stv 0.5 0.1)
    float new_hebbian_confidence = 0.1f;
    float hebbian_update_confidence = 0.1f;  ///< confidence of the update revised into a link (HebbianUpdatingAgent)
    // Forgetting --------------------------------------------------------------------------------------
    std::size_t max_atoms = 10000;    ///< ECAN_ATOMSPACE_MAXSIZE: forget() works once size >= max_atoms + forget_spread ...
    std::size_t forget_spread = 100;  ///< ECAN_ATOMSPACE_ACCEPTABLE_SIZE_SPREAD: ... and forgets down to max_atoms - forget_spread
    double forget_threshold =
            std::numeric_limits<double>::infinity();  ///< ECAN_FORGET_THRESHOLD: only atoms with LTI <= this go (OpenCog: MAXLTI)
    // Quantized storage -------------------------------------------------------------------------------
    double sti_range = 0.0;  ///< largest |STI| a quantized value holds; step = sti_range / max_level; 0: step 1
    double lti_range = 0.0;  ///< the same for LTI
};

/// Attention values and funds for the atoms of one AtomSpace, and the ECAN steps over them.
///
/// The bank keeps one AV per atom index (3 bytes per atom with 8-bit values), growing as the space grows;
/// it listens to the space, so an atom removed by anyone hands its STI and LTI back to the funds. The
/// space must not be changed while a bank step runs, and the bank is neither copyable nor movable (the
/// space holds its address); if the space is destroyed first, every later call throws cogqat::error.
template <AttentionValue AV, TruthValue TV = float_truth_value>
class AttentionBank : private AtomSpace<TV>::listener {
public:
    using space_type = AtomSpace<TV>;
    using attention_value_type = AV;

    /// A bank over `space` with every atom at STI = LTI = VLTI = 0 and the funds at their starting values.
    /// Throws invalid_argument_error naming the first parameter out of its range.
    explicit AttentionBank(space_type& space, ecan_parameters params = {}) : space_(&space), params_(params) {
        validate(params_);
        // Unquantized values (max_level infinite) have no step; they keep 1 and ignore the ranges.
        if (std::isfinite(AV::max_level)) {
            if (params_.sti_range > 0.0) steps_.sti = static_cast<float>(params_.sti_range / AV::max_level);
            if (params_.lti_range > 0.0) steps_.lti = static_cast<float>(params_.lti_range / AV::max_level);
            if (!(steps_.sti > 0.0f) || !(steps_.lti > 0.0f)) {
                throw invalid_argument_error("AttentionBank: ecan_parameters::sti_range or lti_range is too small for a float step");
            }
        }
        sti_funds_ = params_.starting_sti_funds;
        lti_funds_ = params_.starting_lti_funds;
        space.subscribe(*this);
    }
    AttentionBank(const AttentionBank&) = delete;
    AttentionBank& operator=(const AttentionBank&) = delete;
    ~AttentionBank() {
        if (space_ != nullptr) space_->unsubscribe(*this);
    }

    /// The parameters the bank runs with.
    [[nodiscard]] const ecan_parameters& parameters() const noexcept { return params_; }
    /// The value of one STI and one LTI step of the stored values (1 for float values).
    [[nodiscard]] attention_steps steps() const noexcept { return steps_; }
    /// The space the bank is over.
    [[nodiscard]] space_type& space() const { return live_space("space"); }

    // ------------------------------------------------------------------------------------------ values

    /// STI of an atom (as stored: rounded and saturated for quantized values). Every accessor taking a
    /// handle throws invalid_argument_error for one that names no atom of the space.
    [[nodiscard]] double sti(handle h) const { return value(checked(h, "sti")).sti(steps_); }
    [[nodiscard]] double lti(handle h) const { return value(checked(h, "lti")).lti(steps_); }
    [[nodiscard]] unsigned vlti(handle h) const { return value(checked(h, "vlti")).vlti(); }

    /// Sets an atom's STI; the difference comes from (or goes to) the STI funds. |x| must be at most 1e30.
    void set_sti(handle h, double x) {
        const std::uint32_t i = checked(h, "set_sti");
        require_finite(x, "set_sti", "STI");
        grow();
        store(i, x, av_[i].lti(steps_), av_[i].vlti());
    }
    /// Sets an atom's LTI against the LTI funds. |x| must be at most 1e30.
    void set_lti(handle h, double x) {
        const std::uint32_t i = checked(h, "set_lti");
        require_finite(x, "set_lti", "LTI");
        grow();
        store(i, av_[i].sti(steps_), x, av_[i].vlti());
    }
    /// Raises an atom's VLTI by one (saturating): a subsystem needs the atom kept, so forget() spares it.
    void inc_vlti(handle h) {
        const std::uint32_t i = checked(h, "inc_vlti");
        grow();
        store(i, av_[i].sti(steps_), av_[i].lti(steps_), av_[i].vlti() + 1);
    }
    /// Lowers an atom's VLTI by one (not below 0).
    void dec_vlti(handle h) {
        const std::uint32_t i = checked(h, "dec_vlti");
        grow();
        const unsigned v = av_[i].vlti();
        store(i, av_[i].sti(steps_), av_[i].lti(steps_), v == 0 ? 0 : v - 1);
    }

    /// Stimulates an atom: it earns sti_wage() * stimulus of STI and lti_wage() * stimulus of LTI from the
    /// funds (AttentionBank::stimulate). The stimulus and the resulting values must be finite, at most 1e30.
    void stimulate(handle h, double stimulus) {
        const std::uint32_t i = checked(h, "stimulate");
        require_finite(stimulus, "stimulate", "stimulus");
        grow();
        const double sti = av_[i].sti(steps_) + sti_wage() * stimulus;
        const double lti = av_[i].lti(steps_) + lti_wage() * stimulus;
        require_finite(sti, "stimulate", "resulting STI");
        require_finite(lti, "stimulate", "resulting LTI");
        store(i, sti, lti, av_[i].vlti());
    }

    /// STI funds: starting STI funds minus the STI held by atoms.
    [[nodiscard]] double sti_funds() const noexcept { return sti_funds_; }
    /// LTI funds: starting LTI funds minus the LTI held by atoms.
    [[nodiscard]] double lti_funds() const noexcept { return lti_funds_; }
    /// Sum of the atoms' STI, counted afresh.
    [[nodiscard]] double total_sti() const {
        double sum = 0.0;
        for (const AV& av : av_) sum += av.sti(steps_);
        return sum;
    }
    /// Sum of the atoms' LTI, counted afresh.
    [[nodiscard]] double total_lti() const {
        double sum = 0.0;
        for (const AV& av : av_) sum += av.lti(steps_);
        return sum;
    }

    /// Current STI wage: wage (1 + clamp((funds - target) / buffer, -1, 1)), so in [0, 2 wage].
    [[nodiscard]] double sti_wage() const noexcept {
        return params_.sti_wage * (1.0 + std::clamp((sti_funds_ - params_.target_sti_funds) / params_.sti_funds_buffer, -1.0, 1.0));
    }
    /// Current LTI wage, likewise.
    [[nodiscard]] double lti_wage() const noexcept {
        return params_.lti_wage * (1.0 + std::clamp((lti_funds_ - params_.target_lti_funds) / params_.lti_funds_buffer, -1.0, 1.0));
    }
    /// Current STI rent per focus atom and cycle: 0 while the funds are at or above target, else
    /// rent (1 + clamp((target - funds) / buffer, -0.99, 1)) (RentCollectionBaseAgent::calculate_STI_Rent).
    [[nodiscard]] double sti_rent() const noexcept {
        const double diff = params_.target_sti_funds - sti_funds_;
        if (diff <= 0.0) return 0.0;
        return params_.sti_rent * (1.0 + std::clamp(diff / params_.sti_funds_buffer, -0.99, 1.0));
    }
    /// Current LTI rent: rent (1 + clamp((target - funds) / buffer, -1, 1)) (calculate_LTI_Rent).
    [[nodiscard]] double lti_rent() const noexcept {
        return params_.lti_rent * (1.0 + std::clamp((params_.target_lti_funds - lti_funds_) / params_.lti_funds_buffer, -1.0, 1.0));
    }

    // ------------------------------------------------------------------------------------------- focus

    /// The attentional focus as of the last update_focus(): up to focus_size atoms with STI > 0, highest
    /// STI first (ties: lower index first). Hebbian links never enter it.
    [[nodiscard]] const std::vector<handle>& focus() const noexcept { return focus_; }
    /// Whether `h` was in the focus at the last update_focus().
    [[nodiscard]] bool in_focus(handle h) const noexcept { return std::find(focus_.begin(), focus_.end(), h) != focus_.end(); }

    /// Recomputes the focus: the top focus_size atoms by STI among those with STI > 0 (ImportanceIndex).
    /// Also records the smallest and largest STI of all atoms, which Hebbian updates normalise against.
    void update_focus() {
        space_type& space = live_space("update_focus");
        grow();
        const std::vector<std::uint8_t> hebbian = space.types().match_table(types::hebbian_link, true);
        std::vector<std::pair<double, std::uint32_t>> candidates;
        min_sti_ = std::numeric_limits<double>::infinity();
        max_sti_ = -std::numeric_limits<double>::infinity();
        std::size_t nonzero = 0;
        // Most atoms hold STI 0 (as do free indices): only the others need the space's bookkeeping.
        for (std::size_t i = 0; i < av_.size(); ++i) {
            const double s = av_[i].sti(steps_);
            if (s == 0.0) continue;
            const handle h = space.handle_at(static_cast<std::uint32_t>(i));
            if (h.is_null()) continue;
            ++nonzero;
            min_sti_ = std::min(min_sti_, s);
            max_sti_ = std::max(max_sti_, s);
            if (s > 0.0 && !hebbian[space.type(h)]) candidates.emplace_back(s, static_cast<std::uint32_t>(i));
        }
        if (nonzero < space.size()) {  // some atom holds exactly 0
            min_sti_ = std::min(min_sti_, 0.0);
            max_sti_ = std::max(max_sti_, 0.0);
        }
        auto higher = [](const std::pair<double, std::uint32_t>& a, const std::pair<double, std::uint32_t>& b) {
            return a.first != b.first ? a.first > b.first : a.second < b.second;
        };
        const std::size_t k = std::min(params_.focus_size, candidates.size());
        std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k), candidates.end(), higher);
        focus_.clear();
        for (std::size_t j = 0; j < k; ++j) focus_.push_back(space.handle_at(candidates[j].second));
    }

    // ----------------------------------------------------------------------------------- Hebbian links

    /// For every atom that entered the focus since the last call, adds an AsymmetricHebbianLink in each
    /// direction between it and every other focus atom where none exists, with truth value
    /// (new_hebbian_strength, new_hebbian_confidence) and VLTI 1; then, while it is in more than
    /// max_hebbian_links - 1 Hebbian links, drops the weakest (lowest strength x confidence). Returns how
    /// many links were added.
    std::size_t create_hebbian_links() {
        space_type& space = live_space("create_hebbian_links");
        std::vector<handle> entrants;
        for (const handle h : focus_)
            if (space.contains(h) && std::find(seen_focus_.begin(), seen_focus_.end(), h) == seen_focus_.end()) entrants.push_back(h);
        seen_focus_ = focus_;
        const TV fresh(params_.new_hebbian_strength, params_.new_hebbian_confidence);
        std::size_t added = 0;
        for (const handle source : entrants) {
            for (const handle other : focus_) {
                if (other == source || !space.contains(other) || !space.contains(source)) continue;
                for (const auto& [from, to] : {std::pair{source, other}, std::pair{other, source}}) {
                    if (!space.get_link(types::asymmetric_hebbian_link, {from, to}).is_null()) continue;
                    const handle link = space.add_link(types::asymmetric_hebbian_link, {from, to}, fresh);
                    inc_vlti(link);
                    ++added;
                }
            }
            if (space.contains(source)) prune_hebbian_links(source);
        }
        return added;
    }

    /// For every focus atom S and each AsymmetricHebbianLink S -> T: with n(x) the STI of x normalised to
    /// [0, 1] between the smallest and largest STI of all atoms, conj = n(S) n(T) + (n(T) - n(S)) |n(T) - n(S)|
    /// rescaled to [0, 1]; the new strength hebbian_decay conj + (1 - hebbian_decay) strength is revised
    /// into the link's truth value with confidence hebbian_update_confidence (HebbianUpdatingAgent).
    void update_hebbian_links() {
        space_type& space = live_space("update_hebbian_links");
        for (const handle source : focus_) {
            if (!space.contains(source)) continue;
            for (const handle link : space.incoming(source)) {
                if (space.type(link) != types::asymmetric_hebbian_link) continue;
                const auto out = space.outgoing(link);
                if (out.size() != 2 || out[0] != source) continue;
                const double ns = normalised_sti(out[0]);
                const double nt = normalised_sti(out[1]);
                const double conj = (ns * nt + (nt - ns) * std::abs(nt - ns) + 1.0) / 2.0;
                const TV old = space.truth_value(link);
                const double tc = params_.hebbian_decay * conj + (1.0 - params_.hebbian_decay) * old.strength();
                const TV update(static_cast<float>(std::clamp(tc, 0.0, 1.0)), params_.hebbian_update_confidence);
                space.set_truth_value(link, revise(old, update));
            }
        }
    }

    // --------------------------------------------------------------------------------------- diffusion

    /// Importance diffusion from every focus atom S with STI s > 0: s * max_spread_fraction is shared out.
    /// Each Hebbian target T (of an AsymmetricHebbianLink S -> T whose truth value is (strength, confidence))
    /// gets the fraction hebbian_max_allocation * strength * confidence / (number of Hebbian targets); the
    /// rest goes in equal parts to the distinct incident atoms (the links holding S and, for a link, the
    /// atoms it holds; Hebbian links excluded). With no incident atom that rest stays with S. All amounts
    /// are computed from the STI before the step, then applied.
    void diffuse() {
        space_type& space = live_space("diffuse");
        grow();
        const std::vector<std::uint8_t> hebbian = space.types().match_table(types::hebbian_link, true);
        std::vector<std::pair<std::uint32_t, double>> transfers;
        std::vector<std::uint32_t> incident;
        std::vector<std::pair<std::uint32_t, double>> hebbian_targets;
        for (const handle source : focus_) {
            if (!space.contains(source)) continue;
            const double amount = av_[source.index].sti(steps_) * params_.max_spread_fraction;
            if (!(amount > 0.0)) continue;
            incident.clear();
            hebbian_targets.clear();
            for (const handle link : space.incoming(source)) {
                const type_id t = space.type(link);
                if (!hebbian[t]) {
                    if (!params_.spread_hebbian_only) incident.push_back(link.index);
                } else if (t == types::asymmetric_hebbian_link) {
                    const auto out = space.outgoing(link);
                    if (out.size() == 2 && out[0] == source && out[1] != source) {
                        const TV tv = space.truth_value(link);
                        hebbian_targets.emplace_back(out[1].index, static_cast<double>(tv.strength()) * tv.confidence());
                    }
                }
            }
            if (!params_.spread_hebbian_only) {
                for (const handle target : space.outgoing(source))
                    if (!hebbian[space.type(target)]) incident.push_back(target.index);
            }
            std::sort(incident.begin(), incident.end());
            incident.erase(std::unique(incident.begin(), incident.end()), incident.end());
            std::erase(incident, source.index);

            double given = 0.0;
            double hebbian_used = 0.0;
            for (const auto& [target, weight] : hebbian_targets) {
                const double share = params_.hebbian_max_allocation * weight / static_cast<double>(hebbian_targets.size());
                hebbian_used += share;
                transfers.emplace_back(target, amount * share);
                given += amount * share;
            }
            if (!incident.empty()) {
                const double share = (1.0 - hebbian_used) / static_cast<double>(incident.size());
                for (const std::uint32_t target : incident) {
                    transfers.emplace_back(target, amount * share);
                    given += amount * share;
                }
            }
            transfers.emplace_back(source.index, -given);
        }
        apply_sti_changes(transfers);
    }

    // -------------------------------------------------------------------------------------------- rent

    /// Collects rent from every focus atom: sti_rent() of STI, at most what the atom has (and nothing from
    /// an atom with STI <= 0), and likewise lti_rent() of LTI; both go back to the funds. The rent is
    /// recomputed before each atom, as the funds change (AFRentCollectionAgent, one time unit per call).
    void collect_rent() {
        space_type& space = live_space("collect_rent");
        grow();
        for (const handle h : focus_) {
            if (!space.contains(h)) continue;
            const std::uint32_t i = h.index;
            const double s = av_[i].sti(steps_);
            const double l = av_[i].lti(steps_);
            const double sti_due = std::min(sti_rent(), std::max(s, 0.0));
            const double lti_due = std::min(lti_rent(), std::max(l, 0.0));
            store(i, s - sti_due, l - lti_due, av_[i].vlti());
        }
    }

    // -------------------------------------------------------------------------------------- forgetting

    /// When the space holds at least max_atoms + forget_spread atoms, removes atoms until it holds
    /// max_atoms - forget_spread: lowest LTI first (ties: lower |strength|, then lower index), only atoms with
    /// LTI <= forget_threshold and VLTI 0 whose incoming links are all Hebbian (those go with them). Returns
    /// how many atoms were removed, Hebbian links included (ForgettingAgent).
    std::size_t forget() {
        space_type& space = live_space("forget");
        grow();
        const std::size_t size = space.size();
        if (size < params_.max_atoms + params_.forget_spread) return 0;
        const std::size_t keep = params_.max_atoms > params_.forget_spread ? params_.max_atoms - params_.forget_spread : 0;
        const std::size_t goal = size - keep;
        struct candidate {
            double lti;
            float strength;
            handle atom;
        };
        std::vector<candidate> order;
        order.reserve(size);
        space.for_each_atom([&](handle h) { order.push_back({av_[h.index].lti(steps_), std::abs(space.truth_value(h).strength()), h}); });
        std::sort(order.begin(), order.end(), [](const candidate& a, const candidate& b) {
            if (a.lti != b.lti) return a.lti < b.lti;
            if (a.strength != b.strength) return a.strength < b.strength;
            return a.atom.index < b.atom.index;
        });
        const std::vector<std::uint8_t> hebbian = space.types().match_table(types::hebbian_link, true);
        std::size_t removed = 0;
        for (const candidate& c : order) {
            if (removed >= goal || c.lti > params_.forget_threshold) break;
            if (!space.contains(c.atom) || av_[c.atom.index].vlti() != 0) continue;
            bool only_hebbian = true;
            for (const handle l : space.incoming(c.atom)) {
                if (!hebbian[space.type(l)]) {
                    only_hebbian = false;
                    break;
                }
            }
            if (!only_hebbian) continue;
            removed += space.remove(c.atom, space_type::removal::recursive);
        }
        return removed;
    }

    // ------------------------------------------------------------------------------------------- cycle

    /// One ECAN cycle: update_focus, create_hebbian_links, update_hebbian_links, diffuse, collect_rent,
    /// forget, and update_focus again so that focus() reflects the cycle's result.
    void cycle() {
        update_focus();
        create_hebbian_links();
        update_hebbian_links();
        diffuse();
        collect_rent();
        forget();
        update_focus();
    }

private:
    static void validate(const ecan_parameters& p) {
        auto need = [](bool ok, std::string_view field, std::string_view rule) {
            if (!ok)
                throw invalid_argument_error("AttentionBank: ecan_parameters::" + std::string(field) + " must be " + std::string(rule));
        };
        need(std::isfinite(p.starting_sti_funds), "starting_sti_funds", "finite");
        need(std::isfinite(p.starting_lti_funds), "starting_lti_funds", "finite");
        need(std::isfinite(p.target_sti_funds), "target_sti_funds", "finite");
        need(std::isfinite(p.target_lti_funds), "target_lti_funds", "finite");
        need(std::isfinite(p.sti_funds_buffer) && p.sti_funds_buffer > 0.0, "sti_funds_buffer", "finite and > 0");
        need(std::isfinite(p.lti_funds_buffer) && p.lti_funds_buffer > 0.0, "lti_funds_buffer", "finite and > 0");
        need(std::isfinite(p.sti_wage) && p.sti_wage >= 0.0, "sti_wage", "finite and >= 0");
        need(std::isfinite(p.lti_wage) && p.lti_wage >= 0.0, "lti_wage", "finite and >= 0");
        need(std::isfinite(p.sti_rent) && p.sti_rent >= 0.0, "sti_rent", "finite and >= 0");
        need(std::isfinite(p.lti_rent) && p.lti_rent >= 0.0, "lti_rent", "finite and >= 0");
        need(p.max_spread_fraction >= 0.0 && p.max_spread_fraction <= 1.0, "max_spread_fraction", "in [0, 1]");
        need(p.hebbian_max_allocation >= 0.0 && p.hebbian_max_allocation <= 1.0, "hebbian_max_allocation", "in [0, 1]");
        need(p.hebbian_decay >= 0.0 && p.hebbian_decay <= 1.0, "hebbian_decay", "in [0, 1]");
        need(p.new_hebbian_strength >= 0.0f && p.new_hebbian_strength <= 1.0f, "new_hebbian_strength", "in [0, 1]");
        need(p.new_hebbian_confidence >= 0.0f && p.new_hebbian_confidence <= 1.0f, "new_hebbian_confidence", "in [0, 1]");
        need(p.hebbian_update_confidence >= 0.0f && p.hebbian_update_confidence <= 1.0f, "hebbian_update_confidence", "in [0, 1]");
        need(p.max_hebbian_links >= 1, "max_hebbian_links", ">= 1");
        need(!std::isnan(p.forget_threshold), "forget_threshold", "a number");
        need(std::isfinite(p.sti_range) && p.sti_range >= 0.0, "sti_range", "finite and >= 0");
        need(std::isfinite(p.lti_range) && p.lti_range >= 0.0, "lti_range", "finite and >= 0");
    }

    /// Values beyond 1e30 are refused with the non-finite ones: sums of them would overflow the funds.
    static void require_finite(double x, std::string_view context, std::string_view what) {
        constexpr double largest = 1e30;
        if (!(std::abs(x) <= largest)) {
            throw invalid_argument_error("AttentionBank::" + std::string(context) + ": the " + std::string(what) + " " + std::to_string(x) +
                                         " is not a finite number of magnitude at most 1e30");
        }
    }

    space_type& live_space(std::string_view context) const {
        if (space_ == nullptr) throw error("AttentionBank::" + std::string(context) + ": the bank's AtomSpace has been destroyed");
        return *space_;
    }

    std::uint32_t checked(handle h, std::string_view context) const {
        const space_type& space = live_space(context);
        if (!space.contains(h)) {
            throw invalid_argument_error("AttentionBank::" + std::string(context) + ": " + to_string(h) +
                                         " names no atom of the bank's space");
        }
        return h.index;
    }

    /// The stored value of index i; atoms the bank has not seen yet hold the zero value.
    AV value(std::uint32_t i) const noexcept { return i < av_.size() ? av_[i] : AV{}; }

    /// Makes room for every index of the space (new atoms start at zero).
    void grow() {
        const std::size_t bound = live_space("grow").index_bound();
        if (av_.size() < bound) av_.resize(bound);
    }

    /// Stores a new value for index i and books the differences against the funds.
    void store(std::uint32_t i, double sti, double lti, unsigned vlti) noexcept {
        const AV old = av_[i];
        av_[i] = AV::make(sti, lti, vlti, steps_);
        sti_funds_ += old.sti(steps_) - av_[i].sti(steps_);
        lti_funds_ += old.lti(steps_) - av_[i].lti(steps_);
    }

    /// Adds the summed STI changes per atom (one rounding per atom, whatever the number of transfers).
    void apply_sti_changes(std::vector<std::pair<std::uint32_t, double>>& transfers) {
        std::sort(transfers.begin(), transfers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (std::size_t j = 0; j < transfers.size();) {
            const std::uint32_t i = transfers[j].first;
            double delta = 0.0;
            for (; j < transfers.size() && transfers[j].first == i; ++j) delta += transfers[j].second;
            store(i, av_[i].sti(steps_) + delta, av_[i].lti(steps_), av_[i].vlti());
        }
    }

    double normalised_sti(handle h) const noexcept {
        const double range = max_sti_ - min_sti_;
        if (!(range > 0.0)) return 0.0;
        return std::clamp((value(h.index).sti(steps_) - min_sti_) / range, 0.0, 1.0);
    }

    /// Drops the weakest Hebbian links of `source` until it is in fewer than max_hebbian_links.
    void prune_hebbian_links(handle source) {
        space_type& space = *space_;
        std::vector<handle> links = space.incoming_set(source, types::hebbian_link, true);
        if (links.size() < params_.max_hebbian_links) return;
        auto weight = [&](handle l) {
            const TV tv = space.truth_value(l);
            return static_cast<double>(tv.strength()) * tv.confidence();
        };
        std::sort(links.begin(), links.end(), [&](handle a, handle b) {
            const double wa = weight(a), wb = weight(b);
            return wa != wb ? wa < wb : a.index < b.index;
        });
        const std::size_t drop = links.size() - (params_.max_hebbian_links - 1);
        for (std::size_t j = 0; j < drop; ++j) space.remove(links[j], space_type::removal::recursive);
    }

    // AtomSpace<TV>::listener
    void atom_removed(handle h) override {
        const std::uint32_t i = h.index;
        if (i < av_.size()) {
            sti_funds_ += av_[i].sti(steps_);
            lti_funds_ += av_[i].lti(steps_);
            av_[i] = AV{};
        }
        std::erase(focus_, h);
        std::erase(seen_focus_, h);
    }
    void space_moved(space_type& to) noexcept override { space_ = &to; }
    void space_destroyed() noexcept override {
        space_ = nullptr;
        focus_.clear();
        seen_focus_.clear();
    }

    space_type* space_;
    ecan_parameters params_;
    attention_steps steps_;
    std::vector<AV> av_;
    double sti_funds_ = 0.0;
    double lti_funds_ = 0.0;
    std::vector<handle> focus_;
    std::vector<handle> seen_focus_;  // the focus at the last create_hebbian_links
    double min_sti_ = 0.0;
    double max_sti_ = 0.0;
};

}  // namespace cogqat::cog
