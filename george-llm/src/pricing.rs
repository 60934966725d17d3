//! Cost of a call in US dollars, from a price table the user can override.

use std::collections::BTreeMap;

use george_core::provider::Usage;

/// Prices of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Output, reasoning included.
    pub output: f64,
    /// Input read from the prompt cache.
    pub cache_read: f64,
    /// Input written to the prompt cache.
    pub cache_write: f64,
}

impl Price {
    /// The cost of `usage` at these prices, in US dollars.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_read_tokens as f64 * self.cache_read
            + usage.cache_write_tokens as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// Prices by model id prefix; the longest matching prefix wins, so `claude-sonnet-4`
/// prices `claude-sonnet-4-6` and `claude-sonnet-4-5-20250929`.
///
/// [`PriceTable::default`] holds the public list prices of common models as the
/// providers published them in 2025 (standard tier, prompts under 200k tokens).
/// Prices change: set your own with [`PriceTable::set`], or start from
/// [`PriceTable::empty`]. An unknown model costs 0 (and a debug log line).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

fn p(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        let mut t = PriceTable::empty();
        // OpenAI: cached input at its discount; no cache-write charge.
        t.set("gpt-4o", p(2.50, 10.00, 1.25, 0.0));
        t.set("gpt-4o-mini", p(0.15, 0.60, 0.075, 0.0));
        t.set("gpt-4.1", p(2.00, 8.00, 0.50, 0.0));
        t.set("gpt-4.1-mini", p(0.40, 1.60, 0.10, 0.0));
        t.set("gpt-4.1-nano", p(0.10, 0.40, 0.025, 0.0));
        t.set("o4-mini", p(1.10, 4.40, 0.275, 0.0));
        // Anthropic: 5-minute cache writes at 1.25× input, reads at 0.1×.
        t.set("claude-sonnet-4", p(3.00, 15.00, 0.30, 3.75));
        t.set("claude-3-7-sonnet", p(3.00, 15.00, 0.30, 3.75));
        t.set("claude-opus-4", p(15.00, 75.00, 1.50, 18.75));
        t.set("claude-opus-4-5", p(5.00, 25.00, 0.50, 6.25));
        t.set("claude-haiku-4-5", p(1.00, 5.00, 0.10, 1.25));
        t.set("claude-3-5-haiku", p(0.80, 4.00, 0.08, 1.00));
        // Google Gemini: context-cache reads at 25% (storage not counted).
        t.set("gemini-2.5-pro", p(1.25, 10.00, 0.3125, 0.0));
        t.set("gemini-2.5-flash", p(0.30, 2.50, 0.075, 0.0));
        t.set("gemini-2.5-flash-lite", p(0.10, 0.40, 0.025, 0.0));
        t.set("gemini-2.0-flash", p(0.10, 0.40, 0.025, 0.0));
        t
    }
}

impl PriceTable {
    /// A table with no prices.
    pub fn empty() -> Self {
        PriceTable {
            prices: BTreeMap::new(),
        }
    }

    /// Sets the price of the models starting with `model_prefix`.
    pub fn set(&mut self, model_prefix: impl Into<String>, price: Price) -> &mut Self {
        self.prices.insert(model_prefix.into(), price);
        self
    }

    /// The price of `model`: the entry with the longest prefix of it.
    pub fn price(&self, model: &str) -> Option<Price> {
        // Providers may prefix ids (`models/gemini-2.5-flash`, `openai/gpt-4o`).
        let model = model.rsplit('/').next().unwrap_or(model);
        self.prices
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| *p)
    }

    /// The cost of `usage` on `model`, in US dollars; 0 for an unknown model.
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        match self.price(model) {
            Some(p) => p.cost(usage),
            None => {
                tracing::debug!(model, "no price for this model: cost counted as 0");
                0.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_costs_add_up() {
        let t = PriceTable::default();
        assert_eq!(t.price("gpt-4o-mini-2024-07-18"), t.price("gpt-4o-mini"));
        assert_ne!(t.price("gpt-4o-mini"), t.price("gpt-4o"));
        assert_eq!(t.price("claude-sonnet-4-6"), t.price("claude-sonnet-4"));
        assert_eq!(
            t.price("models/gemini-2.5-flash"),
            t.price("gemini-2.5-flash")
        );
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
            cost_usd: 0.0,
        };
        let c = t.cost("claude-sonnet-4-5", &u);
        assert!((c - (3.0 + 1.5 + 0.6)).abs() < 1e-9, "{c}");
        assert_eq!(t.cost("unknown-model", &u), 0.0);
        let mut mine = PriceTable::empty();
        mine.set("local", p(0.0, 0.0, 0.0, 0.0));
        assert_eq!(mine.price("gpt-4o"), None);
    }
}
