"""Word lists the semantic-cache guards read (`verify.py`): closed classes of English.

`POLARITY` maps a word to `axis:pole`: two words on opposite poles of one axis (ascending and
descending, largest and smallest) ask opposite things. It is a hand-made list of common
opposites; an opposite it lacks is not caught by this guard (the benchmark reports opposites the
list has never seen separately, so that gap is measured, not hidden).
"""

from __future__ import annotations

STOPWORDS = frozenset(["a", "an", "the", "and", "or", "but", "if", "of", "at", "by", "for", "with", "about", "as", "into", "onto", "on", "in", "out", "up", "down", "off", "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "should", "now", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "would", "could", "might", "must", "shall", "may", "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom", "whose", "this", "that", "these", "those", "am", "to", "from", "not", "no", "nor", "never", "none", "one's", "also", "yet", "still", "ever", "per", "via"])

# Words that frame a request without changing what is asked ("can you tell me", "quick question").
FRAMING_WORDS = frozenset(["please", "tell", "know", "wonder", "wondering", "question", "quick", "thanks", "thank", "answer", "like", "want", "help", "hey", "hi", "hello", "curious", "let", "us", "say", "give", "explain", "describe", "anyone", "somebody", "someone", "kindly", "would", "need", "wanted"])

NEGATIONS = frozenset(["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without"])

NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}
NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate(["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 3)})
NUMBER_WORDS.update({"hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
                     "dozen": "12", "half": "0.5", "twice": "x2", "double": "x2", "triple": "x3"})

ROLE_PREPOSITIONS = frozenset(["from", "to", "into", "than", "before", "after", "versus", "vs", "over", "under", "above", "below"])

_OPPOSITES = """
ascending descending | ascend descend | increasing decreasing | increase decrease | increases decreases
largest smallest | large small | larger smaller | biggest smallest | big small | bigger smaller
highest lowest | high low | higher lower | maximum minimum | max min | most least | more less
longest shortest | long short | longer shorter | tallest shortest | tall short
fastest slowest | fast slow | faster slower | oldest youngest | older younger | old young
oldest newest | first last | earliest latest | early late | earlier later | before after
start stop | starts stops | started stopped | begin end | beginning end | open close | opened closed
push pull | import export | imports exports | upload download | encode decode | encrypt decrypt
encryption decryption | compress decompress | serialize deserialize | lock unlock | enable disable
enabled disabled | add remove | insert delete | append remove | include exclude | accept reject
true false | correct incorrect | valid invalid | right wrong | safe unsafe | safe dangerous
legal illegal | possible impossible | positive negative | even odd | upper lower | uppercase lowercase
left right | top bottom | up down | north south | east west | inside outside | internal external
input output | read write | send receive | buy sell | bought sold | lend borrow | win lose
won lost | winner loser | gain loss | profit loss | rich poor | heavy light | heaviest lightest
hot cold | hottest coldest | warm cool | warmer cooler | wet dry | hard soft | hardest softest
strong weak | strongest weakest | best worst | better worse | good bad | cheap expensive
cheapest most-expensive | deep shallow | deepest shallowest | wide narrow | thick thin | full empty
before after | above below | over under | enter exit | arrive depart | arrival departure | born died
birth death | alive dead | male female | men women | man woman | boy girl | king queen | father mother
husband wife | son daughter | brother sister | plus minus | add subtract | multiply divide
sum difference | maximize minimize | ancient modern | past future | always never | all none
majority minority | success failure | attack defend | offense defense | agree disagree
love hate | allow deny | allow forbid | permit prohibit | public private | freeze melt
sunrise sunset | day night | morning evening | summer winter | spring autumn | inner outer
""".replace("\n", " | ")

POLARITY: dict[str, str] = {}
for _axis, _pair in enumerate(p.split() for p in _OPPOSITES.split("|") if p.strip()):
    for _pole, _word in enumerate(_pair):
        POLARITY.setdefault(_word, f"{_axis}:{_pole}")

_UNITS = """
km kilometer kilometers kilometre kilometres | mile miles mi | meter meters metre metres m
| centimeter centimeters centimetre centimetres cm | millimeter millimeters millimetre millimetres mm
| foot feet ft | inch inches | yard yards yd | kilogram kilograms kg kilo kilos | gram grams g
| pound pounds lb lbs | ounce ounces oz | ton tons tonne tonnes | liter liters litre litres l
| milliliter milliliters ml | gallon gallons gal | quart quarts | pint pints | cup cups
| celsius centigrade °c | fahrenheit °f | kelvin | degree degrees ° | radian radians
| second seconds sec secs | minute minutes min mins | hour hours hr hrs | day days | week weeks
| month months | year years | decade decades | century centuries
| acre acres | hectare hectares | watt watts | kilowatt kilowatts kw | volt volts | amp amps ampere
| joule joules | calorie calories | byte bytes | kilobyte kilobytes kb | megabyte megabytes mb
| gigabyte gigabytes gb | terabyte terabytes tb | bit bits | mph | kph | percent percentage %
| dollar dollars usd $ | euro euros eur € | pound-sterling gbp £ | yen jpy ¥ | yuan cny rmb
| rupee rupees inr | franc francs chf | peso pesos mxn | ruble rubles rub | won krw | cad | aud
"""
UNITS: dict[str, str] = {}
for _group in _UNITS.split("|"):
    _words = _group.split()
    for _word in _words:
        UNITS.setdefault(_word, _words[0])
