//! What a message is judged with, compiled once from the validated configuration.
//!
//! [`Rules`] is the part that needs no network: the configuration, the brand catalogue and the
//! reason weights. [`Rules::compile`] is the only place they are compiled; `serve` (through
//! [`Runtime::build`]), `check`, `domain`, `brands` and `config-check` all go through it, so
//! they accept and refuse the same files. [`Runtime`] adds the resolver and the DNS cache.
//! Nothing here judges a message.

use crate::auth::{Caches, Verifier};
use crate::config::{Config, ConfigError, Issue};
use crate::lookalike::Catalogue;
use crate::score::Weights;
use std::sync::Arc;

/// The compiled, network-free part of a runtime.
pub struct Rules {
    config: Config,
    catalogue: Catalogue,
    weights: Weights,
    brand_tables: usize,
}

impl Rules {
    /// Compiles the brand catalogue and the weights, collecting every issue of both. The raw
    /// `[[brand]]` tables and `[weights]` are taken out of the configuration: from here on only
    /// their compiled forms exist.
    pub fn compile(mut config: Config) -> Result<Rules, ConfigError> {
        let mut issues = Vec::new();
        let catalogue = Catalogue::build(&config.lookalike, &config.brands)
            .map_err(|mut e| issues.append(&mut e))
            .ok();
        let weights = Weights::build(&config.weights)
            .map_err(|mut e| issues.append(&mut e))
            .ok();
        match (catalogue, weights) {
            (Some(catalogue), Some(weights)) if issues.is_empty() => {
                let brand_tables = std::mem::take(&mut config.brands).len();
                config.weights.clear();
                Ok(Rules {
                    config,
                    catalogue,
                    weights,
                    brand_tables,
                })
            }
            _ => Err(ConfigError::Invalid {
                path: config.path.clone().unwrap_or_default(),
                issues,
            }),
        }
    }

    /// The validated configuration (without the raw brand tables and weights).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The brands in effect: built-in ones merged with `[[brand]]`.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The effective weight of every reason code.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// How many `[[brand]]` tables the file had.
    pub fn brand_tables(&self) -> usize {
        self.brand_tables
    }
}

/// Everything a message is judged with: the configuration and what was compiled from it.
/// The milter swaps a whole `Runtime` on reload; a connection keeps the one it started with.
pub struct Runtime {
    pub config: Config,
    pub catalogue: Catalogue,
    pub weights: Weights,
    /// SPF, DKIM, ARC and DMARC verification with its resolver and DNS cache.
    pub verifier: Verifier,
}

impl Runtime {
    /// Compiles the rules and creates the resolver. `caches` may carry the previous runtime's
    /// DNS cache over a reload.
    pub fn build(config: Config, caches: Option<Arc<Caches>>) -> Result<Runtime, ConfigError> {
        Self::from_rules(Rules::compile(config)?, caches)
    }

    /// Creates the resolver for already compiled rules.
    pub fn from_rules(rules: Rules, caches: Option<Arc<Caches>>) -> Result<Runtime, ConfigError> {
        let Rules {
            config,
            catalogue,
            weights,
            brand_tables: _,
        } = rules;
        let verifier = Verifier::new(&config.dns, caches, config.auth.arc).map_err(|message| {
            ConfigError::Invalid {
                path: config.path.clone().unwrap_or_default(),
                issues: vec![Issue::new("dns", message)],
            }
        })?;
        Ok(Runtime {
            config,
            catalogue,
            weights,
            verifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn rules_compile_collects_catalogue_and_weight_issues() {
        let toml = "[weights]\nNOPE = 1.0\n[[brand]]\nname = \"Acme\"\nmode = \"disable\"\n";
        let config = Config::from_toml(toml, Path::new("milter.toml")).unwrap();
        let Err(e) = Rules::compile(config) else {
            panic!("an unknown brand and an unknown code must be refused");
        };
        assert_eq!(
            e.lines(),
            vec![
                "milter.toml: brand[0].name: cannot disable \"Acme\": no such brand in effect",
                "milter.toml: weights.NOPE: unknown reason code \"NOPE\" (see docs/detection.md)",
            ]
        );
    }

    #[test]
    fn rules_compile_keeps_only_the_compiled_forms() {
        let toml = "[weights]\nDMARC_FAIL = 7.5\n[[brand]]\nname = \"Acme Pay\"\ndomains = [\"acmepay.example\"]\n";
        let config = Config::from_toml(toml, Path::new("milter.toml")).unwrap();
        let rules = Rules::compile(config).unwrap();
        assert_eq!(rules.brand_tables(), 1);
        assert!(rules.config().brands.is_empty());
        assert!(rules.config().weights.is_empty());
        assert_eq!(rules.weights().of("DMARC_FAIL"), 7.5);
        assert!(
            rules
                .catalogue()
                .brand_for_domain("www.acmepay.example")
                .is_some()
        );
    }
}
