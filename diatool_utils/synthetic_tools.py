"""The catalogue behind the synthetic dialogues: tools, their parameters, phrasings and results.

Every tool is written once as a :class:`ToolSpec`: its OpenAI schema, what it can do (the
``capability`` a decline names), several request templates, how its result looks and how
the assistant reports it. Four groups, never mixed:

    split="train"          offered in the SFT and DPO data
    split="eval"           offered only in the held-out evaluation set
    split="phantom_train"  never offered: out-of-scope requests in the training data
    split="phantom_eval"   never offered: out-of-scope requests in the evaluation set
    split="dev"            offered only in the development set (training choices are made on it)
    split="phantom_dev"    never offered: out-of-scope requests in the development set

The dev tools share no domain, capability or phrasing with the train and eval tools, so the
development set is as unseen as the evaluation set, and the evaluation set is scored once, at
the end.

Request templates mark each value as an optional chunk in square brackets, so a value can
be *left out* by regenerating the text without its chunk (that is how Type-2 queries are
made from Type-1 ones): ``"What's the weather[ in {city}][ on {date}]?"`` reads "What's the
weather in Lisbon?" without the date, and "What's the weather?" without either. Text outside
the brackets is always there.

A parameter name means the same thing, with the same JSON schema, in every tool (there is
one :data:`PARAMS` registry), so a dataset loader never sees one column with two types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- value pools

POOLS: dict[str, tuple] = {
    "city": ("Lisbon", "Osaka", "Nairobi", "Toronto", "Melbourne", "Barcelona", "Seoul", "Chicago",
             "Prague", "Lima", "Cairo", "Oslo", "Dublin", "Hanoi", "Denver", "Auckland", "Marseille",
             "Vancouver", "Bogota", "Krakow", "Edinburgh", "Kyoto", "Austin", "Porto", "Istanbul",
             "Helsinki", "Santiago", "Mumbai", "Zurich", "Montreal", "Seattle", "Athens", "Cape Town",
             "Manila", "Vienna", "Boston", "Munich", "Buenos Aires", "Reykjavik", "Singapore"),
    "first_name": ("Maria", "James", "Aiko", "Omar", "Lena", "Carlos", "Priya", "Tom", "Fatima", "Noah",
                   "Sofia", "Daniel", "Mei", "Lucas", "Amara", "Ivan", "Chloe", "Ravi", "Nora", "Ben"),
    "last_name": ("Lopez", "Smith", "Tanaka", "Haddad", "Fischer", "Silva", "Patel", "Brown", "Khan",
                  "Miller", "Rossi", "Kim", "Chen", "Martin", "Okafor", "Petrov", "Dubois", "Singh"),
    "restaurant": ("Blue Olive", "Casa Verde", "The Copper Pot", "Sakura House", "Little Saigon",
                   "Golden Fork", "Harbor Grill", "Trattoria Sole", "Spice Route", "Green Table",
                   "Maple Bistro", "Red Lantern", "Luna Cantina", "The Salt Cellar"),
    "dish": ("pad thai", "margherita pizza", "chicken curry", "veggie burger", "sushi platter",
             "lentil soup", "beef tacos", "caesar salad", "ramen", "falafel wrap", "mushroom risotto"),
    "address": ("12 Elm Street", "48 Harbor Road", "7 Maple Avenue", "230 King Street", "19 Oak Lane",
                "5 Station Road", "88 Park Avenue", "301 River Drive", "64 Hill Crescent", "9 Mill Lane",
                "150 Queen Street", "27 Garden Row"),
    "place": ("Central Station", "Airport Terminal 2", "City Hall", "Union Square", "the Grand Hotel",
              "the convention center", "Riverside Park", "the university library", "Harbor Pier 3"),
    "subject": ("team lunch", "quarterly report", "project kickoff", "weekend plans", "invoice 2291",
                "travel itinerary", "budget review", "conference slides", "holiday schedule"),
    "text_message": ("I'm running 10 minutes late", "dinner is at 8", "the tickets are booked",
                     "the meeting moved to Friday", "I'm outside the station", "I'll be home soon",
                     "the keys are under the mat", "we need more milk"),
    "event_title": ("dentist appointment", "team standup", "yoga class", "project review",
                    "book club", "car service", "piano lesson", "budget meeting", "lunch with Sam"),
    "task": ("pay the electricity bill", "water the plants", "call grandma", "renew my passport",
             "pick up the dry cleaning", "submit the expense report", "book a dentist visit",
             "buy a birthday card", "take out the recycling"),
    "product": ("wireless earbuds", "running shoes", "coffee grinder", "yoga mat", "desk lamp",
                "phone charger", "backpack", "water bottle", "bluetooth speaker", "rain jacket"),
    "movie": ("The Silent Harbor", "Midnight Circuit", "Paper Kingdoms", "Echoes of Mars",
              "The Last Lighthouse", "Velvet Storm", "Northern Lights", "Iron Garden", "Glass Rivers"),
    "song": ("Golden Hour", "Paper Planes", "Slow Tide", "City of Glass", "Morning Run", "Blue Static",
             "Summer Letters", "Neon Rain"),
    "phrase": ("Where is the train station", "Thank you for your help", "I would like a coffee",
               "How much does this cost", "The meeting starts at noon", "Can I pay by card",
               "I am allergic to nuts"),
    "word": ("serendipity", "ephemeral", "ubiquitous", "meticulous", "resilient", "candid", "pragmatic",
             "eloquent", "frugal", "tenacious"),
    "food": ("banana", "avocado", "greek yogurt", "brown rice", "almonds", "salmon", "oatmeal", "lentils",
             "dark chocolate", "apple"),
    "team": ("Riverside Rovers", "Northfield United", "Harbor City FC", "Eastwood Eagles", "Lakeside Lions",
             "Summit Stars", "Westbrook Wolves", "Bayview Bears"),
    "stock": ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "NFLX", "INTC", "ORCL", "IBM"),
    "condition": ("sunny", "cloudy", "rainy", "windy", "snowy", "partly cloudy", "foggy", "stormy"),
    "beach": ("Bondi Beach", "Brighton Beach", "Waikiki Beach", "Copacabana", "Long Beach", "Nazare Beach",
              "Venice Beach", "Clifton Beach"),
    "book_title": ("The Quiet Orchard", "A Map of Salt", "Winter Engines", "The Glass Botanist",
                   "Letters from Nowhere", "The Clockmaker's Daughter", "Small Bright Things"),
    "library_branch": ("Central Library", "Northside Branch", "Eastgate Branch", "Harbor Branch",
                       "University Branch"),
    "club": ("Greenfield Tennis Club", "Lakeside Racquet Club", "Parkview Courts", "Hilltop Sports Club",
             "Riverside Tennis Center"),
    "pet_name": ("Biscuit", "Luna", "Max", "Pepper", "Milo", "Coco", "Rocky", "Daisy", "Oscar"),
    "salon": ("Studio Nine", "Cut & Co", "The Barber Room", "Mane Street", "Shear Bliss"),
    "podcast": ("Deep Space Weekly", "The History Hour", "Startup Stories", "Mind the Code",
                "Kitchen Table Talks"),
    "artist": ("The Paper Kites", "Nova Lane", "Echo Valley", "Marlow Keys", "The Night Owls"),
    "museum": ("the Modern Art Museum", "the Natural History Museum", "the Maritime Museum",
               "the Science Center", "the City Gallery"),
    "country": ("Japan", "Brazil", "Canada", "Kenya", "India", "Australia", "Norway", "Mexico",
                "Vietnam", "Turkey"),
    "grocery": ("eggs", "oat milk", "tomatoes", "bread", "coffee beans", "bananas", "rice", "cheddar"),
    "topping": ("mushrooms", "pepperoni", "olives", "extra cheese", "pineapple", "spinach"),
    "payment_note": ("dinner", "the concert tickets", "rent", "the taxi", "groceries", "the birthday gift"),
    "cancel_reason": ("it arrived too late", "I ordered the wrong size", "I found it cheaper elsewhere",
                      "I changed my mind"),
    "station": ("Central Station", "Market Square", "Harbor Front", "Old Town Gate", "University Plaza"),
}

ENUMS: dict[str, tuple[str, ...]] = {
    "unit": ("celsius", "fahrenheit"),
    "cabin": ("economy", "premium", "business", "first"),
    "cuisine": ("italian", "japanese", "mexican", "indian", "thai", "french", "vegan", "korean"),
    "price_level": ("cheap", "moderate", "expensive"),
    "currency": ("USD", "EUR", "GBP", "JPY", "KRW", "CAD"),
    "account_type": ("checking", "savings", "credit"),
    "genre": ("mystery", "fantasy", "romance", "science fiction", "history", "biography", "thriller"),
    "room": ("living room", "bedroom", "kitchen", "office", "bathroom", "hallway"),
    "light_state": ("on", "off"),
    "door": ("front", "back", "garage", "patio"),
    "language": ("French", "Spanish", "German", "Japanese", "Korean", "Italian", "Portuguese", "Dutch"),
    "activity": ("running", "cycling", "swimming", "yoga", "walking", "rowing", "hiking"),
    "car_type": ("compact", "sedan", "suv", "van", "convertible"),
    "treatment": ("massage", "facial", "manicure", "pedicure", "sauna"),
    "bouquet": ("roses", "tulips", "lilies", "sunflowers", "orchids"),
    "species": ("dog", "cat", "rabbit", "bird", "hamster"),
    "pizza_size": ("small", "medium", "large"),
    "sign": ("aries", "taurus", "gemini", "leo", "virgo", "libra", "scorpio", "pisces"),
    "pollen_level": ("low", "moderate", "high", "very high"),
    "air_quality": ("good", "fair", "moderate", "poor"),
    "order_status": ("in transit", "out for delivery", "delivered", "at the local depot"),
    "flight_status": ("on time", "delayed", "boarding", "landed"),
    # development tools
    "key_type": ("house", "car", "mailbox", "padlock", "office"),
    "street_issue": ("pothole", "broken streetlight", "graffiti tag", "fallen tree", "blocked drain"),
    "bin": ("general waste", "recycling", "garden waste", "glass", "compost"),
    "connector": ("CCS", "CHAdeMO", "Type 2"),
    "wash_package": ("basic", "deluxe", "premium", "full valet"),
    "unit_size": ("small", "medium", "large", "walk-in"),
    "photo_size": ("wallet", "postcard", "A5", "A4", "poster"),
    "finish": ("glossy", "matte"),
    "cause": ("animal welfare", "food banks", "park cleanups", "elderly care", "literacy"),
}


# ------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One tool argument: its JSON schema, how the assistant names it, where its values come from.

    ``values`` is a pool name (:data:`POOLS`, or :data:`ENUMS` for ``enum=True``), or one of
    ``"date"``, ``"time"``, ``"person"``, ``"email"``, ``"phone"``, ``"flight"``, ``"bool"``,
    ``("int", lo, hi)``, ``("money", lo, hi)``, ``("code", prefix, digits)``; result fields
    may also use ``("clock", first_hour, last_hour)``, ``("choice", values)`` and
    ``("pick", pool)`` (see ``synthetic.sample_value``). ``label`` is the noun
    phrase a slot question uses ("the check-in date"); it names the argument with a word of
    its name or description, so a reader (or the rule-based judge) can tell what is asked.
    ``answers`` are how a user gives just this value when asked ("{value}" is the value).
    Booleans are written with ``phrases`` = (text when true, text when false).
    """

    name: str
    type: str
    description: str
    label: str
    values: Any
    enum: bool = False
    format: str | None = None
    answers: tuple[str, ...] = ()
    phrases: tuple[str, str] | None = None

    def schema(self) -> dict:
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.enum:
            schema["enum"] = list(ENUMS[self.values])
        if self.format:
            schema["format"] = self.format
        return schema


def _p(name, type_, description, label, values, **kw) -> Param:
    return Param(name, type_, description, label, values, **kw)


_S, _I, _N, _B = "string", "integer", "number", "boolean"
_IN = ("{value}", "{value}.", "In {value}.", "{value}, please.", "{Label} is {value}.")
_ON = ("{value}", "{value}.", "On {value}.", "{Label} is {value}.", "Let's say {value}.")
_AT = ("{value}", "At {value}.", "{value}, please.", "{Label} is {value}.")

PARAMS: dict[str, Param] = {p.name: p for p in [
    _p("city", _S, "City name, e.g. Lisbon.", "the city", "city", answers=_IN),
    _p("date", _S, "Date, YYYY-MM-DD.", "the date", "date", format="date", answers=_ON),
    _p("unit", _S, "Temperature unit.", "the temperature unit", "unit", enum=True),
    _p("origin", _S, "Departure city.", "the origin city", "city",
       answers=("{value}", "From {value}.", "Leaving from {value}.", "{Label} is {value}.")),
    _p("destination", _S, "Arrival city.", "the destination city", "city",
       answers=("{value}", "To {value}.", "Going to {value}.", "{Label} is {value}.")),
    _p("departure_date", _S, "Departure date, YYYY-MM-DD.", "the departure date", "date", format="date",
       answers=_ON),
    _p("cabin", _S, "Cabin class.", "the cabin class", "cabin", enum=True),
    _p("nonstop", _B, "Only nonstop flights.", "whether it must be nonstop", "bool",
       phrases=("nonstop only", "stops are fine")),
    _p("check_in", _S, "Check-in date, YYYY-MM-DD.", "the check-in date", "date", format="date", answers=_ON),
    _p("nights", _I, "Number of nights.", "the number of nights", ("int", 2, 9),
       answers=("{value}", "{value} nights.", "For {value} nights.", "{Label} is {value}.")),
    _p("guests", _I, "Number of guests.", "the number of guests", ("int", 2, 6),
       answers=("{value}", "{value} guests.", "We are {value}.", "{Label} is {value}.")),
    _p("flight_number", _S, "Flight number, e.g. LH452.", "the flight number", "flight",
       answers=("{value}", "It's {value}.", "Flight {value}.", "{Label} is {value}.")),
    _p("restaurant", _S, "Restaurant name.", "the restaurant", "restaurant", answers=_AT),
    _p("time", _S, "Time, HH:MM (24h).", "the time", "time", format="time", answers=_AT),
    _p("party_size", _I, "Number of people.", "the number of people", ("int", 2, 10),
       answers=("{value}", "{value} people.", "For {value}.", "{Label} is {value}.")),
    _p("cuisine", _S, "Type of cuisine.", "the cuisine", "cuisine", enum=True,
       answers=("{value}", "{value} food.", "Something {value}.", "{Label} is {value}.")),
    _p("price_level", _S, "Price range.", "the price range", "price_level", enum=True),
    _p("dish", _S, "Dish to order.", "the dish", "dish",
       answers=("{value}", "The {value}.", "I'd like the {value}.", "{Label} is {value}.")),
    _p("address", _S, "Street address.", "the address", "address", answers=("{value}", "To {value}.",
       "{Label} is {value}.", "It's {value}.")),
    _p("amount", _N, "Amount of money.", "the amount", ("money", 5, 2000)),
    _p("from_currency", _S, "Currency to convert from.", "the currency to convert from", "currency",
       enum=True),
    _p("to_currency", _S, "Currency to convert to.", "the target currency", "currency", enum=True,
       answers=("{value}", "Into {value}.", "To {value}.", "{Label} is {value}.")),
    _p("symbol", _S, "Stock ticker symbol.", "the ticker symbol", "stock"),
    _p("recipient", _S, "Full name of the payee.", "the payee's name", "person",
       answers=("{value}", "To {value}.", "Send it to {value}.", "{Label} is {value}.")),
    _p("note", _S, "What the payment is for.", "a note", "payment_note"),
    _p("account_type", _S, "Which account.", "the account type", "account_type", enum=True),
    _p("to", _S, "Recipient email address.", "the recipient's email address", "email",
       answers=("{value}", "Send it to {value}.", "It's {value}.", "The address is {value}.")),
    _p("subject", _S, "Email subject line.", "the subject", "subject",
       answers=("{value}", "About {value}.", "The subject is {value}.", "Make it {value}.")),
    _p("contact", _S, "Contact name.", "the contact", "first_name",
       answers=("{value}", "To {value}.", "{value}, please.", "{Label} is {value}.")),
    _p("message", _S, "Text of the message.", "the message text", "text_message",
       answers=("{value}", "Say {value}.", "Tell them {value}.", "The text is {value}.")),
    _p("phone_number", _S, "Phone number to dial.", "the phone number", "phone"),
    _p("title", _S, "Event title.", "the event title", "event_title",
       answers=("{value}", "Call it {value}.", "It's the {value}.", "{Label} is {value}.")),
    _p("duration_minutes", _I, "Length in minutes.", "the duration in minutes", ("int", 15, 120)),
    _p("reminder_text", _S, "What to be reminded of.", "the reminder text", "task",
       answers=("{value}", "To {value}.", "Remind me to {value}.")),
    _p("alarm_time", _S, "Alarm time, HH:MM (24h).", "the alarm time", "time", format="time", answers=_AT),
    _p("label", _S, "Alarm label.", "a label", "event_title"),
    _p("repeat_daily", _B, "Repeat every day.", "whether to repeat it", "bool",
       phrases=("every day", "just once")),
    _p("minutes", _I, "Timer length in minutes.", "the number of minutes", ("int", 2, 90),
       answers=("{value}", "{value} minutes.", "For {value} minutes.", "{Label} is {value}.")),
    _p("tracking_number", _S, "Parcel tracking number.", "the tracking number", ("code", "TRK", 8)),
    _p("product", _S, "Product name.", "the product", "product"),
    _p("quantity", _I, "How many items.", "the quantity", ("int", 2, 5),
       answers=("{value}", "{value} of them.", "{value}, please.", "{Label} is {value}.")),
    _p("query", _S, "Search words.", "the search query", "product"),
    _p("max_price", _N, "Highest price in USD.", "the maximum price", ("money", 20, 400)),
    _p("order_id", _S, "Order number, e.g. ORD-10422.", "the order number", ("code", "ORD-", 5)),
    _p("reason", _S, "Why the order is cancelled.", "the reason", "cancel_reason"),
    _p("movie", _S, "Movie title.", "the movie title", "movie"),
    _p("song", _S, "Song title.", "the song title", "song"),
    _p("shuffle", _B, "Shuffle playback.", "whether to shuffle", "bool", phrases=("on shuffle", "in order")),
    _p("genre", _S, "Book genre.", "the genre", "genre", enum=True),
    _p("pickup", _S, "Pickup address or place.", "the pickup location", "place",
       answers=("{value}", "From {value}.", "Pick me up at {value}.", "{Label} is {value}.")),
    _p("dropoff", _S, "Drop-off address or place.", "the drop-off location", "place",
       answers=("{value}", "To {value}.", "Take me to {value}.", "{Label} is {value}.")),
    _p("pickup_time", _S, "Pickup time, HH:MM (24h).", "the pickup time", "time", format="time",
       answers=_AT),
    _p("room", _S, "Room of the house.", "the room", "room", enum=True,
       answers=("{value}", "The {value}.", "In the {value}.", "{Label} is the {value}.")),
    _p("temperature", _I, "Target temperature in Celsius.", "the target temperature", ("int", 16, 27),
       answers=("{value}", "{value} degrees.", "Make it {value}.", "{Label} is {value}.")),
    _p("state", _S, "Turn the lights on or off.", "the on/off state", "light_state",
       enum=True),
    _p("brightness", _I, "Brightness in percent.", "the brightness", ("int", 10, 100)),
    _p("door", _S, "Which door.", "the door", "door", enum=True,
       answers=("{value}", "The {value} door.", "The {value} one.")),
    _p("text", _S, "Text to translate.", "the text to translate", "phrase"),
    _p("target_language", _S, "Language to translate into.", "the target language", "language",
       enum=True, answers=("{value}", "Into {value}.", "{value}, please.", "{Label} is {value}.")),
    _p("word", _S, "Word to define.", "the word", "word"),
    _p("food", _S, "Food item.", "the food", "food"),
    _p("activity", _S, "Type of workout.", "the activity", "activity", enum=True),
    _p("team", _S, "Team name.", "the team", "team"),
    # held-out (evaluation) tools
    _p("beach", _S, "Beach name.", "the beach", "beach"),
    _p("pickup_date", _S, "Rental start date, YYYY-MM-DD.", "the pickup date", "date", format="date",
       answers=_ON),
    _p("days", _I, "Rental length in days.", "the number of days", ("int", 2, 14),
       answers=("{value}", "{value} days.", "For {value} days.", "{Label} is {value}.")),
    _p("car_type", _S, "Kind of car.", "the car type", "car_type", enum=True),
    _p("treatment", _S, "Spa treatment.", "the treatment", "treatment", enum=True),
    _p("book_title", _S, "Book title.", "the book title", "book_title"),
    _p("branch", _S, "Library branch.", "the library branch", "library_branch"),
    _p("open_now", _B, "Only pharmacies open now.", "whether it must be open now", "bool",
       phrases=("that is open right now", "open or not")),
    _p("recipient_name", _S, "Who receives the flowers.", "the recipient's name", "person"),
    _p("bouquet", _S, "Kind of bouquet.", "the bouquet", "bouquet", enum=True),
    _p("delivery_date", _S, "Delivery date, YYYY-MM-DD.", "the delivery date", "date", format="date",
       answers=_ON),
    _p("stop_id", _S, "Bus stop code, e.g. S1042.", "the stop code", ("code", "S", 4)),
    _p("route", _I, "Bus route number.", "the route number", ("int", 1, 199)),
    _p("tennis_club", _S, "Tennis club name.", "the club", "club"),
    _p("hours", _I, "How many hours.", "the number of hours", ("int", 2, 5)),
    _p("pet_name", _S, "Pet's name.", "your pet's name", "pet_name"),
    _p("species", _S, "Kind of animal.", "the species", "species", enum=True),
    # development tools
    _p("bags", _I, "Number of laundry bags.", "the number of bags", ("int", 2, 6),
       answers=("{value}", "{value} bags.", "{value} of them.", "{Label} is {value}.")),
    _p("key_type", _S, "Kind of key.", "the key type", "key_type", enum=True,
       answers=("{value}", "The {value} key.", "It's a {value} key.", "{Label} is {value}.")),
    _p("copies", _I, "Number of copies.", "the number of copies", ("int", 2, 12),
       answers=("{value}", "{value} copies.", "Make it {value}.", "{Label} is {value}.")),
    _p("issue", _S, "Problem to report on the street.", "the issue", "street_issue", enum=True,
       answers=("{value}", "A {value}.", "It's a {value}.", "{Label} is a {value}.")),
    _p("bin", _S, "Which waste bin.", "the bin", "bin", enum=True,
       answers=("{value}", "The {value} bin.", "{value}, please.", "{Label} is {value}.")),
    _p("connector", _S, "Charging plug of the car.", "the connector", "connector", enum=True),
    _p("wash_package", _S, "Car wash package.", "the wash package", "wash_package", enum=True,
       answers=("{value}", "The {value} one.", "{value}, please.", "{Label} is {value}.")),
    _p("children", _I, "Number of children to look after.", "the number of children", ("int", 2, 4),
       answers=("{value}", "{value} kids.", "I have {value}.", "{Label} is {value}.")),
    _p("unit_size", _S, "Size of the storage unit.", "the unit size", "unit_size", enum=True,
       answers=("{value}", "A {value} one.", "{value}, please.", "{Label} is {value}.")),
    _p("months", _I, "Rental length in months.", "the number of months", ("int", 2, 12)),
    _p("photo_size", _S, "Print size of the photos.", "the photo size", "photo_size", enum=True,
       answers=("{value}", "{value} size.", "{value}, please.", "{Label} is {value}.")),
    _p("finish", _S, "Paper finish.", "the finish", "finish", enum=True),
    _p("cause", _S, "Cause to volunteer for.", "the cause", "cause", enum=True),
    # never offered (out-of-scope requests)
    _p("size", _S, "Pizza size.", "the size", "pizza_size", enum=True),
    _p("topping", _S, "Pizza topping.", "the topping", "topping"),
    _p("show", _S, "Podcast name.", "the show", "podcast"),
    _p("salon", _S, "Salon name.", "the salon", "salon"),
    _p("artist", _S, "Artist name.", "the artist", "artist"),
    _p("station", _S, "Bike station.", "the station", "station"),
    _p("sign", _S, "Zodiac sign.", "your sign", "sign", enum=True),
    _p("item", _S, "Grocery item.", "the item", "grocery"),
    _p("museum", _S, "Museum name.", "the museum", "museum"),
    _p("tickets", _I, "Number of tickets.", "the number of tickets", ("int", 2, 6)),
    _p("nationality", _S, "Traveller's nationality.", "your nationality", "country"),
    _p("destination_country", _S, "Country to visit.", "the destination country", "country"),
    _p("cake_flavor", _S, "Cake flavor.", "the flavor", "cake_flavor"),
    _p("instructor", _S, "Driving instructor's name.", "the instructor", "first_name"),
    _p("escape_room", _S, "Escape room name.", "the escape room", "escape_room"),
    _p("music_style", _S, "Music the DJ plays.", "the music style", "music_style"),
]}


# ------------------------------------------------------------------------------ tools


@dataclass(frozen=True)
class ToolSpec:
    """One tool: schema, capability, request templates, result and completion templates.

    ``result`` maps each result field to a value spec (as :class:`Param` ``values``, or a
    callable ``(arguments and fields so far, rng) -> value``); the tool's answer is its
    required arguments echoed plus these fields. ``completions`` are one-sentence reports that may name
    the required arguments and every result field (``{field}``).
    """

    name: str
    domain: str
    description: str
    capability: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    requests: tuple[str, ...]
    result: dict[str, Any]
    completions: tuple[str, ...]
    split: str = "train"
    params: dict[str, Param] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "params", {n: PARAMS[n] for n in (*self.required, *self.optional)})

    def openai_schema(self) -> dict:
        """The tool as the OpenAI ``tools`` list expects it."""
        return {"type": "function", "function": {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {n: p.schema() for n, p in self.params.items()},
                "required": list(self.required),
            },
        }}


def _t(name, domain, description, capability, required, optional, requests, result, completions,
       split="train") -> ToolSpec:
    return ToolSpec(name, domain, description, capability, tuple(required.split()),
                    tuple(optional.split()), tuple(requests), result, tuple(completions), split)


def _air_quality_level(result, rng):
    return "good" if result["aqi"] <= 50 else "fair" if result["aqi"] <= 100 else "poor"


def _rate(arguments, rng):
    return round(arguments["amount"] * rng.uniform(0.3, 1.7), 2)


def _weekday(result, rng):
    return dt.date.fromisoformat(result["next_collection"]).strftime("%A")


TOOLS: list[ToolSpec] = [
    # ---- weather
    _t("get_weather", "weather", "Get the weather forecast for a city on a date.", "check the weather forecast",
       "city date", "unit", [
           "What's the weather[ in {city}][ on {date}]?",
           "Can you check the forecast[ for {city}][ on {date}][ in {unit}]?",
           "[On {date}, ]will it rain[ in {city}]?",
           "I need the weather forecast[ for {date}][ in {city}][, in {unit} please].",
           "[{city} ]weather[ for {date}], please.",
       ],
       {"condition": "condition", "temperature": ("int", -5, 35)},
       ["It will be {condition} in {city} on {date}, around {temperature} degrees.",
        "The forecast for {city} on {date} is {condition} with {temperature} degrees.",
        "Expect {condition} weather and {temperature} degrees in {city} on {date}."]),
    _t("get_air_quality", "weather", "Get the current air quality index of a city.", "check air quality",
       "city", "", [
           "How clean is the air[ in {city}] today?",
           "Check the air quality[ in {city}].",
           "What's the AQI[ for {city}] right now?",
           "Is the air[ in {city}] safe for running today?",
           "Give me the air quality index[ of {city}], please.",
       ],
       {"aqi": ("int", 10, 180), "level": _air_quality_level},
       ["The air quality index in {city} is {aqi}, which is {level}.",
        "Air quality in {city} is {level} right now (AQI {aqi})."]),
    _t("get_sunrise_sunset", "weather", "Get sunrise and sunset times for a city on a date.",
       "look up sunrise and sunset times", "city date", "", [
           "When does the sun rise[ in {city}][ on {date}]?",
           "What time is sunset[ in {city}][ on {date}]?",
           "[On {date}, ]what are the sunrise and sunset times[ for {city}]?",
           "Sunrise and sunset[ for {city}][ on {date}], please.",
       ],
       {"sunrise": ("clock", 5, 8), "sunset": ("clock", 16, 21)},
       ["In {city} on {date} the sun rises at {sunrise} and sets at {sunset}.",
        "Sunrise in {city} is at {sunrise} and sunset at {sunset} on {date}."]),
    # ---- travel
    _t("search_flights", "travel", "Search flights between two cities on a date.", "search for flights",
       "origin destination departure_date", "cabin nonstop", [
           "Find me a flight[ from {origin}][ to {destination}][ on {departure_date}][ in {cabin} class][, {nonstop}].",
           "Are there any flights[ to {destination}][ from {origin}][ on {departure_date}]?",
           "[On {departure_date} ]I need to fly[ from {origin}][ to {destination}][, {cabin} class].",
           "Search flights[ from {origin}][ to {destination}][ for {departure_date}][, {nonstop}].",
           "I'd like to get[ to {destination}][ on {departure_date}][ from {origin}] by plane.",
       ],
       {"flights": ("int", 2, 14), "cheapest_price": ("money", 60, 900), "airline": ("pick", "airline")},
       ["I found {flights} flights from {origin} to {destination} on {departure_date}; the cheapest is {cheapest_price} USD with {airline}.",
        "The cheapest of {flights} flights from {origin} to {destination} on {departure_date} costs {cheapest_price} USD ({airline})."]),
    _t("book_hotel", "travel", "Book a hotel room in a city.", "book a hotel", "city check_in nights", "guests", [
           "Book a hotel[ in {city}][ from {check_in}][ for {nights} nights][ for {guests} guests].",
           "I need a room[ in {city}][ for {nights} nights][ starting {check_in}].",
           "Can you reserve a hotel[ for {nights} nights][ in {city}][, checking in on {check_in}]?",
           "[Checking in {check_in}, ]please book me a hotel[ in {city}][, {nights} nights][, {guests} guests].",
       ],
       {"hotel": ("pick", "hotel"), "confirmation": ("code", "H-", 6), "total_price": ("money", 90, 2400)},
       ["You're booked at {hotel} in {city} for {nights} nights from {check_in}; confirmation {confirmation}.",
        "Done: {hotel} in {city}, {nights} nights from {check_in}, total {total_price} USD (confirmation {confirmation})."]),
    _t("get_flight_status", "travel", "Get the live status of a flight.", "track flights", "flight_number", "", [
           "Is[ flight {flight_number}| my flight] on time?",
           "What's the status of[ flight {flight_number}| my flight]?",
           "Check[ {flight_number}| my flight] for delays, please.",
           "Has[ flight {flight_number}| my flight] landed yet?",
       ],
       {"status": "flight_status", "gate": ("code", "G", 2)},
       ["Flight {flight_number} status: {status}, gate {gate}.",
        "{flight_number} is {status} right now, at gate {gate}."]),
    # ---- dining
    _t("book_restaurant", "dining", "Reserve a table at a restaurant.", "make restaurant reservations",
       "restaurant date time party_size", "", [
           "Book a table[ at {restaurant}][ for {party_size} people][ on {date}][ at {time}].",
           "Can you reserve[ {restaurant}| a table][ on {date}][ at {time}][ for {party_size}]?",
           "[On {date} ]I'd like a table[ for {party_size}][ at {restaurant}][ around {time}].",
           "Reserve dinner[ for {party_size} people][ at {time}][ on {date}][ at {restaurant}], please.",
           "We want to eat[ at {restaurant}][ on {date}][ at {time}][, party of {party_size}].",
       ],
       {"confirmation": ("code", "R-", 5)},
       ["Your table for {party_size} at {restaurant} on {date} at {time} is confirmed ({confirmation}).",
        "Booked: {restaurant}, {date} at {time}, {party_size} people, confirmation {confirmation}."]),
    _t("find_restaurants", "dining", "Find restaurants in a city by cuisine.", "find restaurants",
       "city cuisine", "price_level", [
           "Find[ {cuisine}] restaurants[ in {city}][ that are {price_level}].",
           "Where can I get[ {cuisine}| good] food[ in {city}]?",
           "Any good[ {price_level}][ {cuisine}] places to eat[ in {city}]?",
           "[In {city}, ]recommend a restaurant[ serving {cuisine} food].",
       ],
       {"top_pick": "restaurant", "rating": ("choice", (4.1, 4.3, 4.5, 4.6, 4.8))},
       ["The best {cuisine} place in {city} is {top_pick}, rated {rating}.",
        "Try {top_pick} for {cuisine} food in {city}; it has a {rating} rating."]),
    _t("order_food_delivery", "dining", "Order food delivery from a restaurant.", "order food delivery",
       "restaurant dish address", "", [
           "Order[ the {dish}| food][ from {restaurant}][ to {address}].",
           "I'm hungry, get me[ {dish}| something][ from {restaurant}][ delivered to {address}].",
           "Can you have[ {restaurant}| a restaurant] deliver[ a {dish}| food][ to {address}]?",
           "[Deliver to {address}: ]I want[ the {dish}| food][ from {restaurant}].",
       ],
       {"eta_minutes": ("int", 15, 60), "total": ("money", 9, 45)},
       ["Your {dish} from {restaurant} is on its way to {address}, arriving in about {eta_minutes} minutes.",
        "Ordered {dish} from {restaurant} for {total} USD; it should reach {address} in {eta_minutes} minutes."]),
    # ---- finance
    _t("convert_currency", "finance", "Convert an amount between currencies.", "convert currencies",
       "amount from_currency to_currency", "", [
           "Convert[ {amount}][ {from_currency}][ to {to_currency}].",
           "How much is[ {amount}][ {from_currency}][ in {to_currency}]?",
           "What do I get[ in {to_currency}][ for {amount}][ {from_currency}]?",
           "I want to exchange[ {amount}][ {from_currency}][ for {to_currency}].",
       ],
       {"converted": _rate},
       ["{amount} {from_currency} is about {converted} {to_currency}.",
        "That comes to {converted} {to_currency} for {amount} {from_currency}."]),
    _t("get_stock_price", "finance", "Get the latest price of a stock.", "look up stock prices", "symbol", "", [
           "What's[ {symbol}| the stock] trading at?",
           "Get me the stock price[ of {symbol}].",
           "How is[ {symbol}| my stock] doing today?",
           "[{symbol}: ]latest share price, please.",
       ],
       {"price": ("money", 20, 900), "change_percent": ("choice", (-2.4, -1.1, -0.3, 0.4, 1.2, 2.8))},
       ["{symbol} is at {price} USD, {change_percent} percent today.",
        "{symbol} trades at {price} USD ({change_percent} percent on the day)."]),
    _t("send_money", "finance", "Send money to a person.", "send money", "recipient amount", "note", [
           "Send[ {amount} dollars| money][ to {recipient}][ for {note}].",
           "Transfer[ {amount} dollars| money][ to {recipient}], please.",
           "I owe[ {recipient}| someone][ {amount} dollars]; pay them back[ for {note}].",
           "Pay[ {recipient}] back[ the {amount} dollars I owe].",
       ],
       {"transfer_id": ("code", "TX", 7)},
       ["Sent {amount} USD to {recipient}; the transfer ID is {transfer_id}.",
        "{recipient} will receive {amount} USD (transfer {transfer_id})."]),
    _t("get_account_balance", "finance", "Get the balance of a bank account.", "check account balances",
       "account_type", "", [
           "What's my[ {account_type}] balance?",
           "How much money is in my[ {account_type}] account?",
           "Check the balance[ of my {account_type} account].",
           "[For my {account_type} account, ]what's left?",
       ],
       {"balance": ("money", 20, 9000)},
       ["Your {account_type} account balance is {balance} USD.",
        "You have {balance} USD in your {account_type} account."]),
    # ---- communication
    _t("send_email", "communication", "Send an email.", "send emails", "to subject", "", [
           "Send an email[ to {to}][ about {subject}].",
           "Email[ {to}][ about the {subject}].",
           "Write[ to {to}][ with the subject {subject}], please.",
           "[About the {subject}: ]please send an email[ to {to}].",
       ],
       {"message_id": ("code", "M", 6)},
       ["Your email about {subject} was sent to {to} (message {message_id}).",
        "Email sent to {to} with subject {subject} (ID {message_id})."]),
    _t("send_text_message", "communication", "Send a text message to a contact.", "send text messages",
       "contact message", "", [
           "Text[ {contact}| my friend][ that {message}].",
           "Send a message[ to {contact}][ saying {message}].",
           "Tell[ {contact}| my friend] by text[ that {message}].",
           "Let[ {contact}| my friend] know[ that {message}].",
           "Send[ the text '{message}'| a text][ to {contact}].",
       ],
       {"delivered_at": "time"},
       ["Your message to {contact} was delivered at {delivered_at}.",
        "{contact} got your text at {delivered_at}."]),
    _t("make_phone_call", "communication", "Call a phone number.", "make phone calls", "phone_number", "", [
           "Call[ {phone_number}| a number for me].",
           "Please dial[ {phone_number}| a number] for me.",
           "Ring[ the number {phone_number}| someone], please.",
           "Can you phone[ {phone_number}| a number for me]?",
       ],
       {"call_status": ("choice", ("ringing", "connected"))},
       ["Calling {phone_number} now; the line is {call_status}.",
        "The call to {phone_number} is {call_status}."]),
    # ---- calendar and productivity
    _t("create_calendar_event", "productivity", "Add an event to the calendar.", "manage your calendar",
       "title date time", "duration_minutes", [
           "Add[ {title}| an event] to my calendar[ on {date}][ at {time}][ for {duration_minutes} minutes].",
           "Schedule[ a {title}| an event][ for {date}][ at {time}].",
           "[On {date} ]put[ {title}| an event] in my calendar[ at {time}].",
           "Create an event[ called {title}][ at {time}][ on {date}].",
           "Block[ {duration_minutes} minutes| time][ on {date}][ at {time}][ for {title}].",
       ],
       {"event_id": ("code", "EV", 5)},
       ["{title} is on your calendar for {date} at {time}, event ID {event_id}.",
        "Added {title} on {date} at {time} (event {event_id})."]),
    _t("set_reminder", "productivity", "Set a reminder for a task.", "set reminders", "reminder_text date time", "", [
           "Remind me[ to {reminder_text}][ on {date}][ at {time}].",
           "Set a reminder[ for {date}][ at {time}][ to {reminder_text}].",
           "[On {date} ]I need a nudge[ at {time}][ to {reminder_text}].",
           "Don't let me forget[ to {reminder_text}][ on {date}][ at {time}].",
       ],
       {"reminder_id": ("code", "RM", 4)},
       ["Reminder {reminder_id} is set: {reminder_text} on {date} at {time}.",
        "Reminder set for {date} at {time}: {reminder_text} (ID {reminder_id})."]),
    _t("set_alarm", "productivity", "Set an alarm.", "set alarms", "alarm_time", "label repeat_daily", [
           "Set an alarm[ for {alarm_time}][ {repeat_daily}].",
           "Wake me up[ at {alarm_time}][ {repeat_daily}].",
           "I need an alarm[ at {alarm_time}][ labelled {label}].",
           "[At {alarm_time} ]ring an alarm[ for {label}], please.",
       ],
       {"alarm_id": ("code", "AL", 3)},
       ["Your alarm is set for {alarm_time} (ID {alarm_id}).",
        "Alarm {alarm_id} will ring at {alarm_time}."]),
    _t("set_timer", "productivity", "Start a countdown timer.", "set timers", "minutes", "", [
           "Set a timer[ for {minutes} minutes].",
           "Start a[ {minutes} minute] countdown.",
           "Count down[ {minutes} minutes] for me, please.",
           "Can you start a timer[ of {minutes} minutes]?",
       ],
       {"ends_at": "time"},
       ["Timer started for {minutes} minutes; it ends at {ends_at}.",
        "Your {minutes} minute timer will go off at {ends_at}."]),
    # ---- shopping
    _t("track_package", "shopping", "Track a parcel by tracking number.", "track packages", "tracking_number", "", [
           "Where is my package[ {tracking_number}]?",
           "Track[ parcel {tracking_number}| my parcel].",
           "Has[ shipment {tracking_number}| my parcel] arrived?",
           "Any update on[ tracking number {tracking_number}| my delivery]?",
       ],
       {"status": "order_status", "expected": "date"},
       ["Package {tracking_number} is {status}, expected on {expected}.",
        "{tracking_number}: {status}; it should arrive {expected}."]),
    _t("add_to_cart", "shopping", "Add a product to the shopping cart.", "shop online",
       "product quantity", "", [
           "Add[ {quantity}][ {product}| items] to my cart.",
           "Put[ {product}| something] in the cart[, {quantity} of them].",
           "I want to buy[ {quantity}][ {product}| items].",
           "Add[ {product}| an item] to the cart[, quantity {quantity}], please.",
       ],
       {"cart_total": ("money", 10, 600)},
       ["Added {product} (quantity {quantity}) to your cart; the total is now {cart_total} USD.",
        "Your cart now holds {product} x{quantity}, total {cart_total} USD."]),
    _t("search_products", "shopping", "Search the shop's products.", "search for products", "query", "max_price", [
           "Search for[ {query}| something][ under {max_price} dollars].",
           "Do you have[ {query}| anything][ for less than {max_price} dollars]?",
           "Show me[ {query}| products][ below {max_price} dollars].",
           "I'm looking for[ {query}| something][, max {max_price} dollars].",
       ],
       {"results": ("int", 3, 40), "best_match": ("pick", "brand")},
       ["I found {results} results for {query}; the best match is from {best_match}.",
        "There are {results} {query} in stock, top pick by {best_match}."]),
    _t("cancel_order", "shopping", "Cancel an order.", "cancel orders", "order_id", "reason", [
           "Cancel[ order {order_id}| my order][ because {reason}].",
           "I want to cancel[ order {order_id}| my order].",
           "Please stop[ order {order_id}| my order] from shipping.",
           "[Order {order_id}: ]cancel it, please.",
       ],
       {"refund": ("money", 10, 300)},
       ["Order {order_id} is cancelled; {refund} USD will be refunded.",
        "{order_id} was cancelled and you'll get {refund} USD back."]),
    # ---- entertainment
    _t("find_movie_showtimes", "entertainment", "Find showtimes of a movie in a city.", "find movie showtimes",
       "movie city date", "", [
           "When is[ {movie}| the movie] playing[ in {city}][ on {date}]?",
           "Showtimes[ for {movie}][ in {city}][ on {date}], please.",
           "[On {date} ]I want to see[ {movie}| a movie][ in {city}].",
           "Find a screening[ of {movie}][ on {date}][ in {city}].",
       ],
       {"cinema": ("pick", "cinema"), "showtime": "time"},
       ["{movie} plays at {cinema} in {city} on {date} at {showtime}.",
        "The next screening of {movie} in {city} on {date} is at {showtime}, {cinema}."]),
    _t("play_music", "entertainment", "Play a song.", "play music", "song", "shuffle", [
           "Play[ {song}| some music][ {shuffle}].",
           "Put on[ the song {song}| a song], please.",
           "I want to hear[ {song}| a song].",
           "Can you play[ {song}| a song] for me?",
       ],
       {"duration": ("choice", ("3:12", "4:05", "2:48", "3:37"))},
       ["Now playing {song} ({duration}).",
        "{song} is playing; it runs {duration}."]),
    _t("recommend_books", "entertainment", "Recommend books of a genre.", "recommend books", "genre", "", [
           "Recommend a[ {genre}] book.",
           "What[ {genre}] should I read next?",
           "I need a good book[ in {genre}].",
           "[Any {genre} ]book suggestions?",
       ],
       {"top_book": "book_title", "author": "person"},
       ["For {genre}, try {top_book} by {author}.",
        "A popular {genre} pick is {top_book} by {author}."]),
    # ---- transport
    _t("book_taxi", "transport", "Book a taxi ride.", "book taxis", "pickup dropoff", "pickup_time", [
           "Get me a taxi[ from {pickup}][ to {dropoff}][ at {pickup_time}].",
           "Book a cab[ to {dropoff}][ from {pickup}].",
           "I need a ride[ at {pickup_time}][ from {pickup}][ to {dropoff}].",
           "[From {pickup}, ]call a taxi[ to {dropoff}], please.",
       ],
       {"driver": "first_name", "eta_minutes": ("int", 2, 15)},
       ["{driver} will pick you up at {pickup} in {eta_minutes} minutes to go to {dropoff}.",
        "Your taxi to {dropoff} arrives at {pickup} in {eta_minutes} minutes; the driver is {driver}."]),
    _t("get_train_schedule", "transport", "Find trains between two cities on a date.", "look up train times",
       "origin destination date", "", [
           "When are the trains[ from {origin}][ to {destination}][ on {date}]?",
           "Train times[ from {origin}][ to {destination}][ for {date}], please.",
           "[On {date} ]I want to take the train[ to {destination}][ from {origin}].",
           "Find me a train[ to {destination}][ on {date}][ leaving {origin}].",
       ],
       {"first_departure": ("clock", 5, 8), "trains": ("int", 3, 20)},
       ["There are {trains} trains from {origin} to {destination} on {date}; the first leaves at {first_departure}.",
        "The first of {trains} trains from {origin} to {destination} on {date} departs at {first_departure}."]),
    # ---- smart home
    _t("set_thermostat", "home", "Set the thermostat of a room.", "control the heating", "room temperature", "", [
           "Set the[ {room}] thermostat[ to {temperature} degrees].",
           "Make[ the {room}| it] warmer[, {temperature} degrees].",
           "Heat[ the {room}| the house][ to {temperature} degrees], please.",
           "Please set[ the {room}| a room][ to {temperature} degrees].",
           "Warm it up[ to {temperature} degrees][ in the {room}].",
       ],
       {"current": ("int", 14, 25)},
       ["The {room} is set to {temperature} degrees; it is {current} degrees now.",
        "The {room} thermostat now targets {temperature} degrees (currently {current})."]),
    _t("control_lights", "home", "Switch the lights in a room.", "control the lights", "room state", "brightness", [
           "Can you turn the lights[ {state}][ in the {room}][ at {brightness} percent]?",
           "Switch[ {state}] the[ {room}] lights.",
           "Lights[ {state}][ in the {room}], please.",
           "[In the {room}, ]put the lights[ {state}].",
       ],
       {"bulbs": ("int", 1, 8)},
       ["The {room} lights are {state} ({bulbs} bulbs).",
        "Switched {state} {bulbs} lights in the {room}."]),
    _t("lock_door", "home", "Lock a door of the house.", "lock doors", "door", "", [
           "Lock the[ {door}] door.",
           "Did I lock the[ {door}] door? Lock it, please.",
           "Please secure the[ {door}] door.",
           "[The {door} door: ]lock it now.",
       ],
       {"locked_at": "time"},
       ["The {door} door was locked at {locked_at}.",
        "Locked the {door} door at {locked_at}."]),
    # ---- knowledge
    _t("translate_text", "knowledge", "Translate text into another language.", "translate text",
       "text target_language", "", [
           "Translate[ '{text}'| something][ into {target_language}].",
           "How do you say[ '{text}'| this][ in {target_language}]?",
           "[In {target_language}, ]how would I write[ '{text}'| a sentence]?",
           "Please translate[ '{text}'| a sentence][ to {target_language}] for me.",
       ],
       {"translation_id": ("code", "TR", 4), "characters": ("int", 12, 40)},
       ["I translated '{text}' into {target_language} ({characters} characters).",
        "Here is '{text}' in {target_language}: the translation has {characters} characters."]),
    _t("define_word", "knowledge", "Look up the definition of a word.", "look up word definitions", "word", "", [
           "What does[ '{word}'| this word] mean?",
           "Define[ the word {word}| a word for me].",
           "Look up[ '{word}'| a word] in the dictionary.",
           "[{word}: ]what's the meaning?",
       ],
       {"part_of_speech": ("choice", ("adjective", "noun", "verb")), "synonym": "word"},
       ["'{word}' is used as a {part_of_speech}; a close synonym is {synonym}.",
        "{word} ({part_of_speech}) means much the same as {synonym}."]),
    # ---- fitness
    _t("log_workout", "fitness", "Log a workout.", "log workouts", "activity duration_minutes", "date", [
           "Log[ {duration_minutes} minutes of| my][ {activity}| workout][ for {date}].",
           "I did[ some {activity}| a workout][ for {duration_minutes} minutes][ on {date}]; record it.",
           "Record my workout[ of {activity}][ lasting {duration_minutes} minutes].",
           "Add[ {activity}| a session] to my workout log[, {duration_minutes} minutes][ on {date}].",
       ],
       {"calories": ("int", 80, 900)},
       ["Logged {duration_minutes} minutes of {activity}, about {calories} calories.",
        "Your {activity} session of {duration_minutes} minutes burned about {calories} calories."]),
    _t("get_calorie_info", "fitness", "Get calories of a food.", "look up calories", "food", "", [
           "How many calories are in[ {food}]?",
           "Calories[ for {food}], please.",
           "Is[ {food}] high in calories?",
           "[{food}: ]what's the calorie count?",
       ],
       {"calories_per_100g": ("int", 20, 600)},
       ["{food} has {calories_per_100g} calories per 100 grams.",
        "There are {calories_per_100g} calories in 100 grams of {food}."]),
    # ---- sports
    _t("get_match_score", "sports", "Get a team's match score on a date.", "look up match scores", "team date", "", [
           "How did[ {team}| my team] do[ on {date}]?",
           "What was the score[ of the {team} game][ on {date}]?",
           "[On {date}, ]did[ {team}| my team] win?",
           "Score[ for {team}][ on {date}], please.",
       ],
       {"opponent": "team", "score": ("choice", ("2-1", "0-0", "3-2", "1-4", "2-2"))},
       ["{team} played {opponent} on {date}; the score was {score}.",
        "On {date}, {team} vs {opponent} ended {score}."]),

    # ==== held-out tools: only in the evaluation set
    _t("get_tide_times", "outdoors", "Get high and low tide times at a beach.", "look up tide times",
       "beach date", "", [
           "When is high tide[ at {beach}][ on {date}]?",
           "Tide times[ for {beach}][ on {date}], please.",
           "[On {date} ]what are the tides[ at {beach}]?",
       ],
       {"high_tide": ("clock", 0, 11), "low_tide": ("clock", 12, 23)},
       ["At {beach} on {date}, high tide is at {high_tide} and low tide at {low_tide}."], split="eval"),
    _t("rent_car", "travel", "Rent a car in a city.", "rent cars", "city pickup_date days", "car_type", [
           "Rent me a car[ in {city}][ from {pickup_date}][ for {days} days][, car type {car_type}].",
           "I need a rental car[ for {days} days][ in {city}][ starting {pickup_date}].",
           "[From {pickup_date}, ]book a car[ in {city}][ for {days} days].",
       ],
       {"daily_rate": ("money", 25, 140), "booking": ("code", "CR", 5)},
       ["Your car in {city} from {pickup_date} for {days} days is booked at {daily_rate} USD a day ({booking})."],
       split="eval"),
    _t("book_spa_appointment", "wellness", "Book a spa treatment.", "book spa treatments",
       "treatment date time", "", [
           "Book[ a {treatment}| a spa treatment][ on {date}][ at {time}].",
           "I'd like a spa appointment[ for a {treatment}][ on {date}][ at {time}].",
           "[On {date} ]can I get[ a {treatment}| a spa slot][ at {time}]?",
       ],
       {"therapist": "first_name"},
       ["Your {treatment} is booked for {date} at {time} with {therapist}."], split="eval"),
    _t("reserve_library_book", "education", "Reserve a library book at a branch.", "reserve library books",
       "book_title branch", "", [
           "Reserve[ {book_title}| a book][ at {branch}].",
           "Can you hold[ the book {book_title}| a book] for me[ at {branch}]?",
           "[At {branch}, ]please put a hold on[ {book_title}| a book].",
       ],
       {"pickup_by": "date"},
       ["{book_title} is on hold at {branch}; pick it up by {pickup_by}."], split="eval"),
    _t("find_pharmacy", "health", "Find a pharmacy in a city.", "find pharmacies", "city", "open_now", [
           "Find a pharmacy[ in {city}][ {open_now}].",
           "Where's the nearest drugstore[ in {city}]?",
           "[In {city}, ]I need a pharmacy[ {open_now}].",
       ],
       {"pharmacy": ("pick", "pharmacy"), "closes_at": ("clock", 18, 23)},
       ["{pharmacy} in {city} is open until {closes_at}."], split="eval"),
    _t("order_flowers", "shopping", "Send a bouquet of flowers.", "send flowers",
       "recipient_name address bouquet delivery_date", "", [
           "Send[ {bouquet}| flowers][ to {recipient_name}][ at {address}][ on {delivery_date}].",
           "Order flowers[ for {recipient_name}][, {bouquet}][, delivered on {delivery_date}][ to {address}].",
           "[On {delivery_date} ]please deliver[ {bouquet}| flowers][ to {recipient_name}][ at {address}].",
       ],
       {"order_number": ("code", "FL", 5), "price": ("money", 25, 120)},
       ["{bouquet} for {recipient_name} will arrive at {address} on {delivery_date}; order {order_number}."],
       split="eval"),
    _t("get_bus_arrival", "transport", "Get the next bus arrival at a stop.", "check bus arrivals",
       "stop_id route", "", [
           "When does the[ {route}] bus come[ to stop {stop_id}]?",
           "Next bus[ on route {route}][ at {stop_id}]?",
           "[At stop {stop_id}, ]how long until the[ route {route}] bus?",
       ],
       {"minutes_away": ("int", 1, 25)},
       ["The route {route} bus reaches stop {stop_id} in {minutes_away} minutes."], split="eval"),
    _t("book_tennis_court", "sports", "Book a tennis court.", "book tennis courts",
       "tennis_club date time", "hours", [
           "Book a tennis court[ at {tennis_club}][ on {date}][ at {time}][ for {hours} hours].",
           "Can I play tennis[ on {date}][ at {time}][ at {tennis_club}]?",
           "[At {tennis_club}, ]reserve a court[ on {date}][ at {time}].",
       ],
       {"court": ("int", 1, 12)},
       ["Court {court} at {tennis_club} is yours on {date} at {time}."], split="eval"),
    _t("schedule_vet_appointment", "pets", "Book a vet appointment for a pet.", "book vet appointments",
       "pet_name species date", "", [
           "Book a vet visit[ for my {species}| for my pet][ {pet_name}][ on {date}].",
           "[On {date}, ]can the vet see my[ {species}| pet][ {pet_name}]?",
           "Schedule a checkup for[ {pet_name},] my[ {species}| pet][ on {date}].",
       ],
       {"appointment_time": "time", "vet": "person"},
       ["{pet_name} the {species} is booked with {vet} on {date} at {appointment_time}."], split="eval"),
    _t("get_pollen_forecast", "health", "Get the pollen forecast for a city.", "check pollen forecasts",
       "city date", "", [
           "What's the pollen count[ in {city}][ on {date}]?",
           "Pollen forecast[ for {city}][ on {date}], please.",
           "[On {date}, ]will my allergies be bad[ in {city}]?",
       ],
       {"level": "pollen_level", "main_pollen": ("choice", ("grass", "birch", "ragweed", "oak"))},
       ["Pollen in {city} on {date} will be {level}, mostly {main_pollen}."], split="eval"),
    _t("find_parking", "transport", "Find parking in a city for some hours.", "find parking",
       "city date hours", "", [
           "Find parking[ in {city}][ on {date}][ for {hours} hours].",
           "I need a parking spot[ for {hours} hours][ in {city}][ on {date}].",
           "[On {date}, ]where can I park[ in {city}][ for {hours} hours]?",
       ],
       {"garage": ("pick", "garage"), "price": ("money", 4, 40)},
       ["{garage} in {city} has space on {date}: {hours} hours cost {price} USD."], split="eval"),

    # ==== never offered: out-of-scope requests in training
    _t("order_pizza", "phantom", "Order a pizza.", "order pizza", "size topping", "", [
           "Order a[ {size}] pizza[ with {topping}].",
           "I want a[ {size}][ {topping}] pizza delivered.",
           "Get me pizza[ with {topping}][, {size}].",
       ], {}, [], split="phantom_train"),
    _t("play_podcast", "phantom", "Play a podcast.", "play podcasts", "show", "", [
           "Play the latest episode[ of {show}].",
           "Put on the podcast[ {show}].",
           "I want to listen to a podcast[ called {show}].",
       ], {}, [], split="phantom_train"),
    _t("book_haircut", "phantom", "Book a haircut.", "book haircuts", "salon date time", "", [
           "Book me a haircut[ at {salon}][ on {date}][ at {time}].",
           "I need a trim[ on {date}][ at {time}][ at {salon}].",
           "[On {date} ]get me a haircut appointment[ at {time}][ at {salon}].",
       ], {}, [], split="phantom_train"),
    _t("check_lottery_results", "phantom", "Check lottery results.", "check lottery results", "date", "", [
           "What were the lottery numbers[ on {date}]?",
           "Did I win the lottery[ on {date}]?",
           "Check the lottery draw[ from {date}].",
       ], {}, [], split="phantom_train"),
    _t("buy_concert_tickets", "phantom", "Buy concert tickets.", "buy concert tickets", "artist city quantity", "", [
           "Buy[ {quantity}] tickets[ for {artist}][ in {city}].",
           "Get me concert tickets[ to see {artist}][ in {city}][, {quantity} of them].",
           "[In {city}, ]I want to see[ {artist}| a band] live; book[ {quantity}] seats.",
       ], {}, [], split="phantom_train"),
    _t("rent_bike", "phantom", "Rent a bike.", "rent bikes", "station hours", "", [
           "Rent a bike[ at {station}][ for {hours} hours].",
           "I need a bicycle[ for {hours} hours][ from {station}].",
           "[From {station}, ]get me a bike[ for {hours} hours].",
       ], {}, [], split="phantom_train"),
    _t("get_horoscope", "phantom", "Get a horoscope.", "read horoscopes", "sign", "", [
           "What's my horoscope[ for {sign}] today?",
           "Read me today's horoscope[ for {sign}].",
           "[I'm a {sign}. ]What do the stars say?",
       ], {}, [], split="phantom_train"),
    _t("order_groceries", "phantom", "Order groceries.", "order groceries", "item quantity", "", [
           "Order[ {quantity}][ {item}| groceries] from the grocery store.",
           "Add[ {item}] to my grocery delivery[, {quantity} of them].",
           "Get me[ {quantity}][ {item}| groceries] delivered.",
       ], {}, [], split="phantom_train"),

    # ==== never offered: out-of-scope requests in the evaluation set
    _t("book_museum_tickets", "phantom", "Book museum tickets.", "book museum tickets", "museum date tickets", "", [
           "Book[ {tickets}] tickets[ for {museum}][ on {date}].",
           "I want to visit[ {museum}| a museum][ on {date}]; get[ {tickets}] tickets.",
       ], {}, [], split="phantom_eval"),
    _t("hire_plumber", "phantom", "Hire a plumber.", "hire a plumber", "address date", "", [
           "Send a plumber[ to {address}][ on {date}].",
           "My sink is leaking; book a plumber[ for {date}][ at {address}].",
       ], {}, [], split="phantom_eval"),
    _t("check_visa_requirements", "phantom", "Check visa rules.", "check visa requirements",
       "nationality destination_country", "", [
           "Do I need a visa[ for {destination_country}][ with a passport from {nationality}]?",
           "Check visa rules[ for {nationality} citizens][ going to {destination_country}].",
       ], {}, [], split="phantom_eval"),
    _t("book_boat_tour", "phantom", "Book a boat tour.", "book boat tours", "city date tickets", "", [
           "Book a boat tour[ in {city}][ on {date}][ for {tickets} people].",
           "I want[ {tickets}] seats on a harbor cruise[ in {city}][ on {date}].",
       ], {}, [], split="phantom_eval"),

    # ==== development tools: only in the development set, in domains no train or eval tool has
    _t("schedule_laundry_pickup", "laundry", "Have laundry collected from an address for washing.",
       "arrange laundry pickups", "address date", "bags", [
           "Can someone collect my laundry[ from {address}][ on {date}]?",
           "I have[ {bags} bags of| some] washing to send out; pick it up[ at {address}][ on {date}].",
           "[On {date}, ]please come and get my dirty clothes[ from {address}].",
       ],
       {"collection_time": ("clock", 8, 20), "laundry_order": ("code", "LD", 5)},
       ["A driver will collect your laundry at {address} on {date} around {collection_time} (order {laundry_order})."],
       split="dev"),
    _t("cut_spare_keys", "locksmith", "Order copies of a key.", "cut spare keys", "key_type copies", "", [
           "I need[ {copies}] spare copies of my[ {key_type}] key.",
           "Could you cut[ {copies}| some] duplicates[ of my {key_type} key| of a key]?",
           "[For my {key_type} key, ]make[ {copies}| a few] extra keys, please.",
       ],
       {"ready_at": ("clock", 10, 18), "price": ("money", 4, 30)},
       ["Your {copies} {key_type} keys will be ready at {ready_at}, {price} USD in total."], split="dev"),
    _t("find_polling_station", "civic", "Find the polling station for a home address.", "find polling stations",
       "address", "", [
           "Where do I go to vote[ if I live at {address}]?",
           "Which polling place is assigned to[ {address}| my home]?",
           "[I live at {address}; ]where is my polling station?",
       ],
       {"polling_station": ("pick", "polling_station"), "opens_at": ("clock", 6, 8), "closes_at": ("clock", 19, 22)},
       ["Voters at {address} go to {polling_station}, open from {opens_at} to {closes_at}."], split="dev"),
    _t("report_street_issue", "civic", "Report a problem on a public street to the city.", "report street problems",
       "issue address", "", [
           "There's a[ {issue}| problem] on the street[ outside {address}]; please report it.",
           "Let the council know about[ a {issue}| an issue][ near {address}].",
           "[Near {address}, ]someone should fix[ a {issue}| something]; can you file a report?",
       ],
       {"ticket": ("code", "CT", 6), "crew_days": ("int", 2, 10)},
       ["I reported the {issue} at {address} as ticket {ticket}; a crew should come within {crew_days} days."],
       split="dev"),
    _t("get_bin_collection_day", "waste", "Get the next collection day of a waste bin at an address.",
       "look up bin collection days", "bin address", "", [
           "When is the[ {bin}] bin emptied[ at {address}]?",
           "Which day is the[ {bin}] collection[ for {address}]?",
           "[For {address}, ]when should I put the[ {bin}] bin out?",
       ],
       {"next_collection": "date", "weekday": _weekday},
       ["The {bin} bin at {address} is next emptied on {weekday}, {next_collection}."], split="dev"),
    _t("find_ev_charger", "automotive", "Find electric car charging points in a city.", "find EV charging points",
       "city", "connector", [
           "Where can I charge my electric car[ in {city}][ with a {connector} plug]?",
           "Find me a free charging point[ in {city}][ for {connector}].",
           "[In {city}, ]my EV battery is low; any chargers nearby?",
       ],
       {"charging_station": ("pick", "charging_station"), "free_points": ("int", 2, 8),
        "power_kw": ("choice", (22, 50, 150, 350))},
       ["{charging_station} in {city} has {free_points} free chargers of up to {power_kw} kW."], split="dev"),
    _t("book_car_wash", "automotive", "Book a car wash slot.", "book car washes", "wash_package date time", "", [
           "Book my car in for a[ {wash_package}] wash[ on {date}][ at {time}].",
           "[On {date}, ]I'd like my car cleaned[ at {time}][ with the {wash_package} package].",
           "Can you get me a car wash slot[ at {time}][ on {date}][, {wash_package}]?",
       ],
       {"bay": ("int", 1, 6), "price": ("money", 8, 60)},
       ["Your {wash_package} car wash is booked for {date} at {time} in bay {bay}, {price} USD."], split="dev"),
    _t("book_babysitter", "childcare", "Book a babysitter to look after children.", "book babysitters",
       "date time children", "hours", [
           "Find a babysitter[ for my {children} kids][ on {date}][ from {time}][ for {hours} hours].",
           "[On {date}, ]can someone watch[ my {children} children| the kids][ starting at {time}]?",
           "We need a sitter[ at {time}][ on {date}][ for {children} children].",
       ],
       {"sitter": "first_name", "hourly_rate": ("money", 12, 30)},
       ["{sitter} will look after your {children} children on {date} from {time} for {hourly_rate} USD an hour."],
       split="dev"),
    _t("rent_storage_unit", "storage", "Rent a self-storage unit in a city.", "rent storage units",
       "city unit_size", "months", [
           "I need a[ {unit_size}] storage unit[ in {city}][ for {months} months].",
           "Rent me space to keep my furniture[ in {city}][, a {unit_size} unit].",
           "[In {city}, ]are there[ {unit_size}| any] storage units free[ for {months} months]?",
       ],
       {"facility": ("pick", "storage_facility"), "unit_number": ("code", "U", 3), "monthly_rate": ("money", 30, 250)},
       ["Unit {unit_number}, {unit_size}, at {facility} in {city} is yours for {monthly_rate} USD a month."],
       split="dev"),
    _t("print_photos", "printing", "Order photo prints.", "order photo prints", "photo_size copies", "finish", [
           "Print[ {copies}] photos[ in {photo_size} size][ on {finish} paper].",
           "I want[ {copies}| some] prints of my holiday pictures[, {photo_size}].",
           "[In {photo_size} format, ]could you make[ {copies}| a few] photo prints[ with a {finish} finish]?",
       ],
       {"print_order": ("code", "PH", 5), "ready_at": ("clock", 12, 19)},
       ["Your {copies} {photo_size} prints are ordered ({print_order}) and will be ready at {ready_at}."],
       split="dev"),
    _t("find_volunteer_shift", "volunteering", "Find volunteer shifts in a city on a date.",
       "find volunteering shifts", "city date", "cause", [
           "I'd like to volunteer[ in {city}][ on {date}][ for {cause}].",
           "Where can I help out[ on {date}][ in {city}][ with {cause}]?",
           "[On {date}, ]are there volunteer shifts open[ in {city}]?",
       ],
       {"organisation": ("pick", "charity"), "shift_start": ("clock", 8, 14), "spots_left": ("int", 2, 9)},
       ["{organisation} in {city} has a volunteer shift on {date} at {shift_start}, with {spots_left} spots left."],
       split="dev"),

    # ==== never offered: out-of-scope requests in the development set
    _t("order_birthday_cake", "phantom", "Order a birthday cake.", "order cakes", "cake_flavor date", "", [
           "Order a[ {cake_flavor}] birthday cake[ for {date}].",
           "[For {date}, ]I need a[ {cake_flavor}] cake from the bakery.",
       ], {}, [], split="phantom_dev"),
    _t("book_driving_lesson", "phantom", "Book a driving lesson.", "book driving lessons", "date time",
       "instructor", [
           "Book me a driving lesson[ on {date}][ at {time}][ with {instructor}].",
           "[On {date} ]I want to practise driving[ at {time}].",
       ], {}, [], split="phantom_dev"),
    _t("book_escape_room", "phantom", "Book an escape room.", "book escape rooms", "escape_room date tickets", "", [
           "Book[ {escape_room}| an escape room][ on {date}][ for {tickets} players].",
           "[On {date}, ]we want to try[ {escape_room}| an escape room]; get[ {tickets}] spots.",
       ], {}, [], split="phantom_dev"),
    _t("hire_dj", "phantom", "Hire a DJ for a party.", "hire DJs", "date music_style", "", [
           "Hire a DJ[ who plays {music_style}][ for {date}].",
           "[On {date} ]we're having a party; can you get a[ {music_style}] DJ?",
       ], {}, [], split="phantom_dev"),
]

EXTRA_POOLS = {
    "airline": ("SkyBridge Air", "Northwind", "Atlas Airways", "BlueJet", "Coastline Air"),
    "hotel": ("Hotel Aurora", "The Linden", "Harborview Inn", "Casa Sol", "The Meridian", "Parkside Suites"),
    "cinema": ("Rex Cinema", "Odeon Central", "Starlight Theater", "Cine Nova", "The Picture House"),
    "brand": ("Northpeak", "Lumio", "Everstride", "Kettle & Co", "Brightline"),
    "pharmacy": ("City Pharmacy", "Green Cross", "Well Plus", "Corner Chemist"),
    "garage": ("Central Garage", "Park & Go", "Riverside Parking", "Station Car Park"),
    "polling_station": ("Riverside Community Hall", "St Mark's School", "Eastside Library Annex",
                        "Old Fire Station", "Hillcrest Primary School"),
    "charging_station": ("VoltHub", "ChargePoint Plaza", "GreenPlug Station", "Amp Corner"),
    "storage_facility": ("SafeBox Storage", "Keep It Here", "Cornerstone Storage", "Stack & Store"),
    "charity": ("Helping Hands", "Open Door Trust", "Green Streets", "Second Harvest", "Good Neighbours"),
    "cake_flavor": ("chocolate", "lemon", "carrot", "red velvet", "vanilla"),
    "escape_room": ("The Locked Study", "Pharaoh's Tomb", "Lab 13", "The Vault"),
    "music_style": ("disco", "jazz", "hip hop", "eighties pop", "house"),
}
POOLS.update(EXTRA_POOLS)

TOOLS_BY_NAME: dict[str, ToolSpec] = {t.name: t for t in TOOLS}


SPLITS = ("train", "eval", "dev", "phantom_train", "phantom_eval", "phantom_dev")


def tools_in(split: str) -> list[ToolSpec]:
    """The tools of one split, one of :data:`SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"unknown tool split {split!r}; choose one of {', '.join(SPLITS)}")
    return [t for t in TOOLS if t.split == split]
