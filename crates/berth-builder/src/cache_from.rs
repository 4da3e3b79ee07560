//! `--cache-from` by history, as Docker's classic builder matches it: an image loaded from
//! elsewhere (`docker load`, a pull) has no intermediate images and none of this daemon's
//! cache keys, so a step is a hit when a source image's history continues the current
//! image's history with a row made by the same command (and its layers continue the
//! current layers). The hit is the source itself at its last row, else an image restored
//! from the source's layers up to that row; after one hit the build sticks to that source.

use berth_image::Image;
use berth_image::commit::NewLayer;

use crate::Result;
use crate::executor::Build;
use crate::state::StageState;

/// Whether `img`'s history and layers are where `source`'s begin.
pub(crate) fn is_prefix(img: &Image, source: &Image) -> bool {
    let (h, sh) = (&img.config.history, &source.config.history);
    let (l, sl) = (&img.config.rootfs.diff_ids, &source.config.rootfs.diff_ids);
    h.len() <= sh.len()
        && l.len() <= sl.len()
        && l[..] == sl[..l.len()]
        && h.iter().zip(sh).all(|(a, b)| {
            a.created_by == b.created_by
                && a.empty_layer == b.empty_layer
                && a.comment == b.comment
                && a.author == b.author
        })
}

/// Whether a cache source may be the step's result as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whole {
    AtLastRow,
    Never,
}

impl Build {
    /// The first `--cache-from` image whose history continues the state's image with a row
    /// made by `created_by`.
    fn history_source(&self, st: &StageState, created_by: &str) -> Option<&Image> {
        let parent = st.image.as_ref();
        let at = parent.map_or(0, |p| p.config.history.len());
        self.history_sources.iter().find(|s| {
            s.config.history.get(at).is_some_and(|h| h.created_by.as_deref() == Some(created_by))
                && parent.is_none_or(|p| is_prefix(p, s))
        })
    }

    /// A `--cache-from` image that this step ends: the build's result is then that image
    /// itself, as Docker's, not an equal image made here (another creation time, another ID).
    pub(crate) fn source_ending_here(&self, st: &StageState, created_by: &str) -> Option<Image> {
        let at = st.image.as_ref().map_or(0, |p| p.config.history.len());
        self.history_source(st, created_by).filter(|s| s.config.history.len() == at + 1).cloned()
    }

    /// A hit in the `--cache-from` images' histories for the step that `created_by`
    /// describes, on top of the state's image.
    pub(crate) async fn history_hit(&mut self, st: &StageState, created_by: &str) -> Result<Option<Image>> {
        let Some(source) = self.history_source(st, created_by).cloned() else { return Ok(None) };
        self.history_sources = vec![source.clone()];
        self.restore(st, &source, created_by, Whole::AtLastRow).await
    }

    /// A hit in the imported inline caches for the step `key`: a source that has the key
    /// and whose history and layers continue the state's image.
    pub(crate) async fn inline_hit(&mut self, st: &StageState, key: &str, created_by: &str) -> Result<Option<Image>> {
        let parent = st.image.as_ref();
        let at = parent.map_or(0, |p| p.config.history.len());
        let source = self.inline_sources.iter().find(|(s, keys)| {
            keys.contains(key) && s.config.history.len() > at && parent.is_none_or(|p| is_prefix(p, s))
        });
        let Some((source, _)) = source.cloned() else { return Ok(None) };
        let created_by = source.config.history[at].created_by.clone().unwrap_or_else(|| created_by.to_string());
        // As BuildKit takes a cache: the filesystem only. The image's configuration (its
        // Env, Entrypoint, labels, its own cache metadata) is the build's, never the pushed
        // image's, which is input from a registry.
        self.restore(st, &source, &created_by, Whole::Never).await
    }

    /// The image `source` has after the row that continues the state's image: with
    /// [`Whole::AtLastRow`] the source itself at its last row (Docker's classic
    /// `--cache-from`), else one made from the state's image and configuration and the
    /// source's layer.
    async fn restore(&self, st: &StageState, source: &Image, created_by: &str, whole: Whole) -> Result<Option<Image>> {
        let parent = st.image.clone();
        let at = parent.as_ref().map_or(0, |p| p.config.history.len());
        if whole == Whole::AtLastRow && source.config.history.len() == at + 1 {
            return Ok(Some(source.clone()));
        }
        let row = &source.config.history[at];
        let layer = if row.empty_layer {
            NewLayer::Empty
        } else {
            let n = parent.as_ref().map_or(0, |p| p.config.rootfs.diff_ids.len());
            match source.config.rootfs.diff_ids.get(n) {
                Some(d) => NewLayer::Existing(d.clone()),
                None => return Ok(None),
            }
        };
        let mut st2 = StageState::new(parent, String::new(), st.escape);
        st2.config = st.config.clone();
        st2.author = st.author.clone();
        Ok(Some(self.commit(&st2, layer, created_by.to_string(), String::new()).await?))
    }
}
