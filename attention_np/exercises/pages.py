"""The site's pages, in the site's order, and how the exercises name them.

Each exercise belongs to one page of the learning site (its Sphinx docname, e.g.
"chapters/07-positional-encoding"): the page that teaches what it asks for. ``list`` groups the
exercises by page in this order, and the site shows each page's exercises on it. Titles are the
pages' own (docs/locales/README.md fixes the Chinese ones). A page of the site not listed here
(one added since) has no exercise; on the site its Exercises section points to the exercises
page (docs/_ext/exercise_sections.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from attention_np.exercises.lang import pick


@dataclass(frozen=True)
class Page:
    """docname: the page's Sphinx name; chapter: its chapter number ("" for an application
    page); title: (English, Chinese) of the page; part: (English, Chinese) of the chapter a
    sub-page belongs to, or None."""
    docname: str
    chapter: str
    title: tuple
    part: tuple | None = None

    def heading(self, lang: str | None = None) -> str:
        """"3. Soft attention", "11. Projects and applications › Machine translation: …",
        "Applications › Knowledge graphs: graph attention" (in ``lang``)."""
        title = pick(self.title, lang)
        if self.part is not None:
            return f"{pick(self.part, lang)} › {title}"
        return f"{self.chapter}. {title}" if self.chapter else title


_PROJECTS = ("11. Projects and applications", "11. 项目与应用")
_APPLICATIONS = ("Applications", "应用")

PAGES = (
    Page("chapters/01-why-attention", "1", ("Why attention", "为什么需要注意力")),
    Page("chapters/02-map-of-attention", "2", ("A map of attention", "注意力机制全景")),
    Page("chapters/03-soft-attention", "3", ("Soft attention", "软注意力")),
    Page("chapters/04-score-functions", "4", ("Score functions", "打分函数")),
    Page("chapters/05-hard-attention", "5", ("Hard attention and REINFORCE",
                                            "硬注意力与 REINFORCE")),
    Page("chapters/06-self-attention", "6", ("Self-attention", "自注意力")),
    Page("chapters/07-positional-encoding", "7", ("Where am I? Positional encoding",
                                                 "我在哪儿？位置编码")),
    Page("chapters/08-multi-head-attention", "8", ("Multi-head attention", "多头注意力")),
    Page("chapters/09-transformer", "9", ("The Transformer block, and what attention is not",
                                         "Transformer 块，以及注意力不是什么")),
    Page("chapters/10-seeing-attention", "10", ("Seeing attention", "注意力可视化")),
    Page("chapters/11-projects/index", "11", ("Projects and applications", "项目与应用")),
    Page("chapters/11-projects/captioning", "11", ("Image captioning: Show, Attend and Tell",
                                                  "图像字幕生成：Show, Attend and Tell"),
         _PROJECTS),
    Page("chapters/11-projects/sentiment", "11",
         ("Sentiment classifier: heads that learn word roles", "情感分类器：学会词语角色的注意力头"),
         _PROJECTS),
    Page("chapters/11-projects/translation", "11", ("Machine translation: Bahdanau attention",
                                                   "机器翻译：Bahdanau 注意力"), _PROJECTS),
    Page("chapters/11-projects/speech", "11", ("Speech recognition: Listen, Attend and Spell",
                                              "语音识别：Listen, Attend and Spell"), _PROJECTS),
    Page("chapters/11-projects/recommendation", "11",
         ("Recommendation: the Deep Interest Network", "推荐：深度兴趣网络（DIN）"), _PROJECTS),
    Page("chapters/12-efficient-attention", "12", ("Cost and efficient attention",
                                                  "计算代价与高效注意力")),
    Page("chapters/13-errata", "13", ("Errata", "勘误")),
    Page("chapters/14-faq", "14", ("FAQ, reading list, framework map, glossary",
                                   "常见问题、阅读清单、框架对照与术语表")),
    Page("applications/knowledge-graphs", "", ("Knowledge graphs: graph attention",
                                               "知识图谱：图注意力"), _APPLICATIONS),
    Page("applications/vision", "", ("Vision: channel, spatial and patch attention",
                                      "视觉：通道、空间与图块注意力"), _APPLICATIONS),
    Page("applications/induction-heads", "",
         ("A decoder-only language model and its induction heads", "仅解码器语言模型及其归纳头"),
         _APPLICATIONS),
    Page("applications/overfitting", "",
         ("Overfitting, measured: data, heads and attention dropout",
          "过拟合的实测：数据量、注意力头与注意力 dropout"), _APPLICATIONS),
    Page("applications/visual-question", "",
         ("Attention across modalities: questions about an image", "跨模态的注意力：关于图像的提问"),
         _APPLICATIONS),
    Page("applications/pointer", "",
         ("Attention as a pointer: sorting numbers", "注意力当指针：给数字排序"), _APPLICATIONS),
)

ORDER = {page.docname: i for i, page in enumerate(PAGES)}


class UnknownPage(ValueError):
    """No page of the site has that docname."""


def page(docname: str) -> Page:
    """The page called ``docname`` ("chapters/03-soft-attention"), or :class:`UnknownPage`."""
    for p in PAGES:
        if p.docname == docname:
            return p
    raise UnknownPage(f"no page {docname!r}; the pages are {[p.docname for p in PAGES]}")
