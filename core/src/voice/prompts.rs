//! Voice prompts as data (`voice-prompts/{ja,en}.toml`, built-in defaults), checked for
//! meaning: no empty prompt, no unknown placeholder, every prompt a flow needs.
use super::*;

/// Prompt ids every language must have (besides `q.<question>` for each flow question).
pub const STANDARD_PROMPTS: &[&str] = &[
    "greeting",
    "howto_temperature",
    "howto_spo2",
    "howto_yes_no",
    "invalid",
    "no_input",
    "readback",
    "thanks",
    "urgent",
    "callback",
    "member_next",
    "identify_dob",
    "identify_failed",
    "nothing_today",
    "identify_retry",
    "already_answered",
    "machine",
    "summary_temperature",
    "summary_spo2",
    "summary_spo2_none",
    "summary_yes",
    "summary_no_symptoms",
];

/// The placeholders a prompt may use (filled in by the call engine).
pub const PLACEHOLDERS: &[&str] = &["centre", "count", "phone", "summary", "value"];

/// Prompts that would be read wrongly: empty ones (the caller hears silence) and unknown
/// `{placeholders}` (read out literally). Each named with file and line.
pub(crate) fn check_prompts(
    file: &str,
    src: &str,
    prompts: &BTreeMap<String, String>,
) -> Vec<String> {
    let line_of = |id: &str| {
        src.lines()
            .position(|l| {
                let l = l.trim_start().trim_start_matches('"');
                l.starts_with(id)
                    && l[id.len()..]
                        .trim_start_matches('"')
                        .trim_start()
                        .starts_with('=')
            })
            .map(|i| i + 1)
            .unwrap_or(1)
    };
    let mut problems = Vec::new();
    for (id, text) in prompts {
        if text.trim().is_empty() {
            problems.push(format!(
                "{file}:{}: prompt '{id}' is empty (the caller would hear silence)",
                line_of(id)
            ));
        }
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                problems.push(format!(
                    "{file}:{}: prompt '{id}' uses {{{name}}}, which is not filled in (it would be read out as written); known: {}",
                    line_of(id),
                    PLACEHOLDERS.join(", ")
                ));
            }
            rest = &after[close + 1..];
        }
    }
    problems
}

#[derive(Debug, Clone)]
pub struct LangPrompts {
    pub voice: String,
    pub language: String,
    prompts: BTreeMap<String, String>,
    /// Prompt id → file name of a recording under `audio/<lang>/`.
    audio: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Prompts {
    by_lang: BTreeMap<String, LangPrompts>,
}

pub(crate) const BUILTIN: &[(&str, &str)] = &[
    ("ja", include_str!("../../../voice-prompts/ja.toml")),
    ("en", include_str!("../../../voice-prompts/en.toml")),
];

impl Prompts {
    /// Loads `ja.toml`, `en.toml`, … from `dir` (built-in texts when `dir` does not exist) and
    /// lists recordings in `dir/audio/<lang>/`.
    pub fn load(dir: &Path) -> Result<Prompts, Vec<String>> {
        let mut sources = Vec::new();
        if dir.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| vec![format!("{}: {e}", dir.display())])?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                let lang = f
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                let src = std::fs::read_to_string(&f)
                    .map_err(|e| vec![format!("{}: {e}", f.display())])?;
                sources.push((f.display().to_string(), lang, src));
            }
        } else {
            for (lang, src) in BUILTIN {
                sources.push((
                    format!("(built-in) voice-prompts/{lang}.toml"),
                    lang.to_string(),
                    src.to_string(),
                ));
            }
        }
        let mut problems = Vec::new();
        let mut by_lang = BTreeMap::new();
        for (file, lang, src) in sources {
            match toml::from_str::<PromptFile>(&src) {
                Ok(p) => {
                    problems.extend(check_prompts(&file, &src, &p.prompts));
                    let mut audio = BTreeMap::new();
                    if let Ok(entries) = std::fs::read_dir(dir.join("audio").join(&lang)) {
                        for e in entries.flatten() {
                            let name = e.file_name().to_string_lossy().to_string();
                            if let Some((id, ext)) = name.rsplit_once('.')
                                && matches!(ext, "mp3" | "wav")
                            {
                                audio.insert(id.to_string(), name.clone());
                            }
                        }
                    }
                    by_lang.insert(
                        lang,
                        LangPrompts {
                            voice: p.voice,
                            language: p.language,
                            prompts: p.prompts,
                            audio,
                        },
                    );
                }
                Err(e) => {
                    let line = e
                        .span()
                        .map(|s| src[..s.start].matches('\n').count() + 1)
                        .unwrap_or(1);
                    problems.push(format!("{file}:{line}: {}", e.message()));
                }
            }
        }
        for lang in ["ja", "en"] {
            if !by_lang.contains_key(lang) && problems.is_empty() {
                problems.push(format!(
                    "voice-prompts: no prompts for language '{lang}' ({lang}.toml)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(Prompts { by_lang })
        } else {
            Err(problems)
        }
    }

    /// Prompt ids the flows need that a language does not have.
    pub fn missing_for(&self, flows: &Flows) -> Vec<String> {
        let mut needed: BTreeSet<String> = STANDARD_PROMPTS.iter().map(|s| s.to_string()).collect();
        for flow in flows.all() {
            for item in &flow.voice_items {
                needed.insert(item.prompt.clone());
            }
        }
        let mut out = Vec::new();
        for (lang, p) in &self.by_lang {
            for id in &needed {
                if !p.prompts.contains_key(id) {
                    out.push(format!(
                        "voice-prompts/{lang}.toml: prompt '{id}' is missing"
                    ));
                }
            }
        }
        out
    }

    pub fn lang(&self, lang: Lang) -> &LangPrompts {
        self.by_lang
            .get(lang.as_str())
            .or_else(|| self.by_lang.get("ja"))
            .expect("ja prompts are checked at load")
    }
}

impl LangPrompts {
    /// The text of `id` with `{name}` placeholders filled in.
    pub fn text(&self, id: &str, vars: &[(&str, String)]) -> String {
        let mut t = self.prompts.get(id).cloned().unwrap_or_default();
        for (k, v) in vars {
            t = t.replace(&format!("{{{k}}}"), v);
        }
        t
    }
    pub fn audio(&self, id: &str) -> Option<&str> {
        self.audio.get(id).map(String::as_str)
    }
}
