#include "datagen/text_gen.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <unordered_set>

namespace mbx::datagen {
namespace {

// Common English words, roughly in decreasing frequency, with office words
// mixed in. Lowercase letters only, at most Vocabulary::kMaxWordLength long.
constexpr std::string_view kCommonWords[] = {
    "the", "to", "and", "of", "a", "in", "is", "that", "for", "it", "we", "you", "be", "on",
    "this", "with", "as", "will", "have", "are", "not", "at", "i", "can", "from", "by", "or",
    "your", "our", "if", "please", "all", "an", "was", "so", "but", "would", "they", "more",
    "let", "know", "there", "do", "me", "which", "also", "one", "about", "has", "new", "what",
    "team", "up", "out", "get", "need", "when", "some", "time", "should", "any", "just", "like",
    "been", "us", "them", "my", "thanks", "into", "could", "other", "meeting", "their", "next",
    "week", "project", "than", "then", "these", "its", "were", "may", "only", "work", "make",
    "see", "review", "how", "over", "after", "first", "well", "back", "update", "now", "two",
    "use", "think", "still", "call", "good", "want", "here", "today", "because", "plan",
    "before", "those", "most", "made", "each", "going", "look", "way", "very", "customer",
    "through", "many", "year", "much", "where", "sure", "take", "report", "last", "did",
    "send", "same", "help", "budget", "around", "while", "data", "number", "follow", "client",
    "thank", "another", "might", "right", "come", "find", "question", "both", "between",
    "agree", "under", "day", "during", "again", "set", "change", "since", "date", "part",
    "issue", "feedback", "discuss", "schedule", "without", "end", "current", "give", "high",
    "process", "support", "include", "keep", "already", "open", "point", "own", "working",
    "able", "status", "check", "draft", "attached", "below", "above", "quarter", "morning",
    "afternoon", "tomorrow", "friday", "monday", "office", "document", "version", "final",
    "service", "system", "product", "sales", "cost", "price", "order", "contract", "account",
    "deadline", "release", "test", "result", "design", "option", "proposal", "approval",
    "request", "changes", "details", "information", "available", "possible", "important",
    "together", "whether", "though", "until", "every", "few", "less", "long", "small", "large",
    "early", "late", "great", "best", "better", "little", "old", "different", "following",
    "free", "full", "sorry", "yes", "no", "ok", "hope", "happy", "looking", "forward", "note",
    "notes", "item", "items", "list", "share", "shared", "add", "added", "move", "moved",
    "start", "started", "finish", "done", "ready", "soon", "later", "earlier", "once", "twice",
    "month", "months", "weeks", "days", "hours", "minutes", "room", "slides", "deck", "email",
    "message", "reply", "phone", "site", "page", "file", "files", "folder", "link", "access",
    "team's", "manager", "director", "partner", "vendor", "invoice", "payment", "revenue",
    "forecast", "target", "goal", "risk", "impact", "scope", "resource", "resources",
    "training", "session", "workshop", "launch", "campaign", "market", "strategy", "growth",
    "quality", "performance", "security", "policy", "compliance", "legal", "finance",
    "analysis", "summary", "agenda", "minutes", "action", "owner", "priority", "timeline",
    "milestone", "delivery", "shipping", "travel", "expense", "expenses", "approved", "pending",
    "confirm", "confirmed", "question", "questions", "answer", "problem", "solution", "idea",
    "ideas", "people", "person", "group", "company", "business", "industry", "region", "local",
    "global", "internal", "external", "regarding", "per", "via", "etc", "however", "therefore",
    "really", "actually", "probably", "maybe", "quite", "almost", "always", "never", "often",
};

// Syllables for the rest of the vocabulary.
constexpr std::string_view kOnsets[] = {
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
    "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sh", "sl", "sp",
    "st", "str", "th", "tr", "wh", "", ""};
constexpr std::string_view kVowels[] = {"a", "e", "i", "o", "u", "a", "e", "i", "o",
                                        "ai", "ea", "ee", "io", "ou", "oo", "ue", "y"};
constexpr std::string_view kCodas[] = {"", "", "", "", "n", "r", "s", "t", "l", "m", "nd",
                                       "nt", "st", "ck", "ng", "rd", "rt", "x", "ll", "ss"};
constexpr std::string_view kSuffixes[] = {"", "", "", "", "", "", "ing", "ed", "er", "ion",
                                          "ly", "ment", "ness", "able", "al", "ive", "s"};

constexpr std::string_view kFirstNames[] = {
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances",
    "Edsger", "Radia", "Donald", "Katherine", "John", "Mary", "James", "Patricia", "Robert",
    "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David", "Susan", "Richard",
    "Jessica", "Joseph", "Sarah", "Thomas", "Karen", "Charles", "Nancy", "Christopher", "Lisa",
    "Daniel", "Betty", "Matthew", "Sandra", "Anthony", "Ashley", "Mark", "Emily", "Paul",
    "Donna", "Steven", "Michelle", "Andrew", "Carol", "Kenneth", "Amanda", "Joshua", "Melissa",
    "Kevin", "Deborah", "Brian", "Stephanie", "George", "Rebecca", "Timothy", "Sharon", "Ronald",
    "Laura", "Jason", "Cynthia", "Jeffrey", "Kathleen", "Ryan", "Amy", "Jacob", "Angela", "Gary",
    "Shirley", "Nicholas", "Anna", "Eric", "Brenda", "Jonathan", "Pamela", "Stephen", "Emma",
    "Larry", "Nicole", "Justin", "Helen", "Scott", "Samantha", "Brandon", "Katie", "Benjamin",
    "Christine", "Samuel", "Debra", "Gregory", "Rachel", "Alexander", "Carolyn", "Patrick",
    "Janet", "Frank", "Maria", "Raymond", "Olivia", "Jack", "Heather", "Dennis", "Diane", "Jerry",
    "Julie", "Tyler", "Joyce", "Aaron", "Victoria", "Jose", "Ruth", "Adam", "Virginia", "Nathan",
    "Lauren", "Henry", "Kelly", "Zachary", "Christina", "Kyle", "Joan", "Noah", "Evelyn", "Ethan",
    "Judith", "Jeremy", "Andrea", "Walter", "Hannah", "Christian", "Megan", "Keith", "Cheryl",
    "Roger", "Jacqueline", "Terry", "Martha", "Austin", "Madison", "Sean", "Teresa", "Gerald",
    "Gloria", "Carl", "Sara", "Harold", "Janice", "Dylan", "Ann", "Arthur", "Kathryn", "Lawrence",
    "Abigail", "Jordan", "Sophia", "Jesse", "Frances", "Bryan", "Jean", "Billy", "Alice", "Bruce",
    "Judy", "Gabriel", "Isabella", "Joe", "Julia", "Logan", "Grace", "Alan", "Amber", "Juan",
    "Denise", "Wayne", "Danielle", "Roy", "Marilyn", "Ralph", "Beverly", "Randy", "Charlotte",
    "Eugene", "Natalie", "Vincent", "Theresa", "Russell", "Diana", "Louis", "Brittany", "Philip",
    "Doris", "Bobby", "Kayla", "Johnny", "Alexis", "Bradley", "Lori", "Priya", "Wei", "Hiroshi",
    "Fatima", "Mohammed", "Olga", "Sven", "Ingrid", "Pierre", "Chiara", "Mateo", "Lucia",
    "Kwame", "Amara", "Ravi", "Mei", "Yuki", "Dmitri", "Aisha", "Carlos", "Sofia", "Lars"};

constexpr std::string_view kLastNames[] = {
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
    "Allen", "Dijkstra", "Perlman", "Knuth", "Johnson", "Smith", "Williams", "Brown", "Jones",
    "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Perez",
    "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson",
    "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips",
    "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
    "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
    "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson",
    "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster",
    "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler",
    "Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan",
    "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno",
    "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar",
    "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez",
    "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman",
    "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter",
    "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Munoz", "Hunt", "Hicks",
    "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox",
    "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza", "Daniels", "Ferguson", "Nichols",
    "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley", "Spencer",
    "Hawkins", "Arnold", "Pierce", "Hansen", "Peters", "Santos", "Hart", "Bradley", "Knight",
    "Elliott", "Cunningham", "Duncan", "Armstrong", "Hudson", "Carroll", "Lane", "Riley",
    "Andrews", "Ray", "Berry", "Perkins", "Hoffman", "Johnston", "Matthews", "Pena", "Richards",
    "Willis", "Carpenter", "Lawrence", "Sandoval", "O'Brien", "Nakamura", "Okafor", "Kowalski",
    "Novak", "Larsen", "Dubois", "Rossi", "Muller", "Sato", "Singh", "Haddad", "Ivanova"};

constexpr std::string_view kCompanies[] = {
    "Contoso", "Fabrikam", "Northwind Traders", "Tailspin Toys", "Adventure Works", "Litware",
    "Proseware", "Wide World Importers", "Woodgrove Bank", "Alpine Ski House", "Coho Winery",
    "Fourth Coffee", "Lucerne Publishing", "Trey Research", "Wingtip Toys", "Humongous Insurance",
    "Blue Yonder Airlines", "Graphic Design Institute", "City Power and Light", "Margie Travel",
    "Relecloud", "Southridge Video", "VanArsdel", "Bellows College", "Datum Corporation",
    "First Up Consultants", "Lamna Healthcare", "Munson Pickles", "Nod Publishers", "Tasmanian Traders"};

constexpr std::string_view kJobTitles[] = {
    "Account Manager", "Senior Analyst", "Software Engineer", "Product Manager", "Director of Sales",
    "Marketing Specialist", "Project Coordinator", "Chief Financial Officer", "HR Business Partner",
    "Operations Manager", "Solutions Architect", "Customer Success Lead", "Legal Counsel",
    "Executive Assistant", "Data Scientist", "Program Manager", "Procurement Specialist",
    "IT Administrator", "Research Scientist", "Regional Manager", "Support Engineer",
    "Business Analyst", "Vice President, Engineering", "Office Manager", "Controller"};

constexpr std::string_view kCities[] = {
    "Springfield, IL 62701", "Portland, OR 97201", "Austin, TX 78701", "Denver, CO 80202",
    "Seattle, WA 98101", "Boston, MA 02108", "Madison, WI 53703", "Raleigh, NC 27601",
    "Columbus, OH 43215", "Tucson, AZ 85701", "Boise, ID 83702", "Albany, NY 12207",
    "Richmond, VA 23219", "Omaha, NE 68102", "Savannah, GA 31401", "Burlington, VT 05401",
    "Santa Fe, NM 87501", "Anchorage, AK 99501", "Honolulu, HI 96813", "Fargo, ND 58102"};

constexpr std::string_view kSubjectTopics[] = {
    "Quarterly budget review", "Project status update", "Weekly sync", "Team offsite",
    "Contract renewal", "Invoice", "Travel plans", "Customer escalation", "Release notes",
    "Onboarding schedule", "Security update", "Lunch on Friday", "Performance review",
    "Hiring plan", "Roadmap draft", "Board presentation", "Expense report", "Vendor proposal",
    "Marketing campaign", "Sales forecast", "Holiday schedule", "Office move", "Training session",
    "Design review", "Action items", "Meeting notes", "Feedback on the proposal", "Question about the report",
    "Service outage", "Pricing update", "Partner meeting", "Conference registration",
    "Benefits enrollment", "Purchase order", "Support ticket", "Product launch", "Data migration",
    "Audit findings", "Compliance training", "Customer visit", "Year-end close", "Kickoff",
    "Sprint planning", "Retrospective", "Newsletter", "Welcome aboard", "Reminder",
    "Follow-up", "Quick question", "Draft agreement", "Signed copy", "Shipping delay",
    "Survey results", "Town hall", "Capacity planning", "License renewal", "Architecture review",
    "Interview feedback", "Team dinner", "Status report"};

constexpr std::string_view kStockSentences[] = {
    "Thanks for the update.", "Please let me know if you have any questions.",
    "Let me know what you think.", "Hope you are doing well.", "Thanks in advance.",
    "Please find the latest version attached.", "See my comments below.",
    "Sorry for the late reply.", "Happy to discuss further.", "Looking forward to hearing from you.",
    "Can we set up a quick call this week?", "I will follow up with the team.",
    "Please review and confirm.", "Adding a few more people to this thread.",
    "As discussed in the meeting, here are the next steps.", "Thanks for your help with this.",
    "Let me check and get back to you.", "Does this work for you?", "Sounds good to me.",
    "Please see the notes from today's meeting below.", "I have updated the document.",
    "Just a quick reminder about the deadline.", "Can you take a look when you have a moment?",
    "Great work, everyone.", "We are on track for the release.", "Let's discuss on Monday.",
    "I am out of the office until Friday.", "Thanks again for your time today.",
    "Please send me the final numbers by end of day.", "Any feedback is welcome."};

constexpr std::string_view kMonthsShort[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::string_view kMonthsLong[] = {"January", "February", "March",     "April",
                                            "May",     "June",     "July",      "August",
                                            "September", "October", "November", "December"};
constexpr std::string_view kDaysShort[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kDaysLong[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};

bool IsLowerWord(std::string_view w) {
  if (w.empty() || w.size() > Vocabulary::kMaxWordLength) return false;
  for (char c : w)
    if (c < 'a' || c > 'z') return false;
  return true;
}

struct Civil {
  int year;
  unsigned month, day, weekday, hour, minute, second, millis;
};

Civil ToCivil(Timestamp t) {
  using namespace std::chrono;
  const auto dp = floor<days>(t);
  const year_month_day ymd{dp};
  const weekday wd{dp};
  const auto us = (t - dp).count();  // microseconds into the day, >= 0
  const uint64_t ms = uint64_t(us) / 1000;
  Civil c;
  c.year = int(ymd.year());
  c.month = unsigned(ymd.month());
  c.day = unsigned(ymd.day());
  c.weekday = wd.c_encoding();
  c.hour = unsigned(ms / 3600000);
  c.minute = unsigned(ms / 60000 % 60);
  c.second = unsigned(ms / 1000 % 60);
  c.millis = unsigned(ms % 1000);
  if (c.month < 1 || c.month > 12) c.month = 1;
  if (c.weekday > 6) c.weekday = 0;
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------
// Vocabulary

Vocabulary::Vocabulary() {
  std::vector<std::string> words;
  std::unordered_set<std::string> seen;
  words.reserve(kTargetSize);
  for (std::string_view w : kCommonWords) {
    if (!IsLowerWord(w)) continue;  // e.g. "team's"
    if (seen.emplace(w).second) words.emplace_back(w);
  }
  common_count_ = words.size();
  Rng rng(0x6d62786d6f766521ull);  // fixed: the vocabulary never changes
  std::string w;
  while (words.size() < kTargetSize) {
    w.clear();
    const int syllables = 1 + int(rng.Uniform(3)) + (rng.PerMille(300) ? 1 : 0);
    for (int s = 0; s < syllables; ++s) {
      w += kOnsets[rng.Uniform(std::size(kOnsets))];
      w += kVowels[rng.Uniform(std::size(kVowels))];
      if (s + 1 == syllables || rng.PerMille(350)) w += kCodas[rng.Uniform(std::size(kCodas))];
    }
    w += kSuffixes[rng.Uniform(std::size(kSuffixes))];
    if (w.size() < 3 || !IsLowerWord(w)) continue;
    if (seen.insert(w).second) words.push_back(w);
  }

  const size_t n = words.size();
  slots_.assign(n * kSlot, '\0');
  lengths_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(slots_.data() + i * kSlot, words[i].data(), words[i].size());
    lengths_[i] = uint8_t(words[i].size());
  }

  zipf_ = ZipfTable(n, kZipfExponent);

  // Phrases: 2..5 Zipf-drawn words, unique, at most kPhraseSlot - 1 bytes.
  std::unordered_set<std::string> seen_phrases;
  std::string phrase;
  phrase_slots_.assign(kPhrases * kPhraseSlot, '\0');
  while (phrase_lengths_.size() < kPhrases) {
    phrase.clear();
    const uint64_t words_in_phrase = 2 + rng.Uniform(4);
    for (uint64_t k = 0; k < words_in_phrase; ++k) {
      if (k > 0) phrase.push_back(' ');
      phrase += words[zipf_.Sample(rng.Next32())];
    }
    if (phrase.size() >= kPhraseSlot || !seen_phrases.insert(phrase).second) continue;
    std::memcpy(phrase_slots_.data() + phrase_lengths_.size() * kPhraseSlot, phrase.data(),
                phrase.size());
    phrase_lengths_.push_back(uint8_t(phrase.size()));
  }
  phrase_zipf_ = ZipfTable(kPhrases, kPhraseZipfExponent);
}

const Vocabulary& Vocabulary::Get() {
  static const Vocabulary* const v = new Vocabulary();  // never destroyed: safe at exit
  return *v;
}

std::span<const std::string_view> Vocabulary::StockSentences() const { return kStockSentences; }

// ---------------------------------------------------------------------------
// Lists

std::span<const std::string_view> FirstNames() { return kFirstNames; }
std::span<const std::string_view> LastNames() { return kLastNames; }
std::span<const std::string_view> Companies() { return kCompanies; }
std::span<const std::string_view> JobTitles() { return kJobTitles; }
std::span<const std::string_view> Cities() { return kCities; }
std::span<const std::string_view> SubjectTopics() { return kSubjectTopics; }

namespace {
void AppendLetters(std::string* out, std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') out->push_back(char(c - 'A' + 'a'));
    else if (c >= 'a' && c <= 'z') out->push_back(c);
  }
}
}  // namespace

std::string EmailLocalPart(std::string_view first, std::string_view last) {
  std::string s;
  AppendLetters(&s, first);
  if (!s.empty()) s.push_back('.');
  AppendLetters(&s, last);
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s.empty()) s = "user";
  return s;
}

std::string CompanyDomain(std::string_view company) {
  std::string s;
  AppendLetters(&s, company);
  if (s.empty()) s = "company";
  s += ".example";
  return s;
}

// ---------------------------------------------------------------------------
// TextWriter

TextWriter::TextWriter(std::string* out, size_t reserve)
    : out_(out), pos_(out->size()), line_start_(out->size()), vocab_(Vocabulary::Get()) {
  if (reserve > 0) out_->resize(pos_ + reserve);
}

void TextWriter::Finish() {
  if (out_->size() != pos_) out_->resize(pos_);
}

void TextWriter::Grow(size_t n) {
  const size_t need = pos_ + n;
  size_t cap = std::max<size_t>(out_->size() * 2, 256);
  while (cap < need) cap *= 2;
  out_->resize(cap);
}

void TextWriter::Append(std::string_view s) {
  Ensure(s.size());
  std::memcpy(out_->data() + pos_, s.data(), s.size());
  pos_ += s.size();
}

void TextWriter::Uint(uint64_t v) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = char('0' + v % 10);
    v /= 10;
  } while (v != 0);
  Ensure(size_t(n));
  char* d = out_->data() + pos_;
  for (int i = 0; i < n; ++i) d[i] = buf[n - 1 - i];
  pos_ += size_t(n);
}

void TextWriter::UintPadded(uint64_t v, int width) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = char('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 20);
  Ensure(size_t(std::max(n, width)));
  for (int i = n; i < width; ++i) out_->data()[pos_++] = '0';
  char* d = out_->data() + pos_;
  for (int i = 0; i < n; ++i) d[i] = buf[n - 1 - i];
  pos_ += size_t(n);
}

void TextWriter::Decimal(uint64_t hundredths) {
  Uint(hundredths / 100);
  Put('.');
  UintPadded(hundredths % 100, 2);
}

void TextWriter::Word(Rng& rng, bool capitalize) {
  const uint32_t w = vocab_.Sample(rng.Next32());
  Ensure(Vocabulary::kSlot);
  char* d = out_->data() + pos_;
  std::memcpy(d, vocab_.Slot(w), Vocabulary::kSlot);
  if (capitalize) d[0] = char(d[0] - 'a' + 'A');
  pos_ += vocab_.Length(w);
}

void TextWriter::RareWord(Rng& rng, bool capitalize) {
  const size_t common = vocab_.common_count();
  const uint32_t w = uint32_t(common + rng.Uniform(vocab_.size() - common));
  Ensure(Vocabulary::kSlot);
  char* d = out_->data() + pos_;
  std::memcpy(d, vocab_.Slot(w), Vocabulary::kSlot);
  if (capitalize) d[0] = char(d[0] - 'a' + 'A');
  pos_ += vocab_.Length(w);
}

void TextWriter::FirstName(Rng& rng) { Append(kFirstNames[rng.Uniform(std::size(kFirstNames))]); }

void TextWriter::IsoDate(Timestamp t) {
  const Civil c = ToCivil(t);
  UintPadded(uint64_t(std::max(c.year, 0)), 4);
  Put('-');
  UintPadded(c.month, 2);
  Put('-');
  UintPadded(c.day, 2);
}

void TextWriter::IsoDateTime(Timestamp t) {
  const Civil c = ToCivil(t);
  IsoDate(t);
  Put(' ');
  UintPadded(c.hour, 2);
  Put(':');
  UintPadded(c.minute, 2);
  Put(':');
  UintPadded(c.second, 2);
}

void TextWriter::MailDate(Timestamp t) {
  const Civil c = ToCivil(t);
  Append(kDaysShort[c.weekday]);
  Append(", ");
  Uint(c.day);
  Put(' ');
  Append(kMonthsShort[c.month - 1]);
  Put(' ');
  Uint(uint64_t(std::max(c.year, 0)));
  Put(' ');
  UintPadded(c.hour, 2);
  Put(':');
  UintPadded(c.minute, 2);
}

void TextWriter::Rfc5322Date(Timestamp t) {
  MailDate(t);
  Put(':');
  UintPadded(ToCivil(t).second, 2);
  Append(" +0000");
}

void TextWriter::LongDateTime(Timestamp t) {
  const Civil c = ToCivil(t);
  Append(kDaysLong[c.weekday]);
  Append(", ");
  Append(kMonthsLong[c.month - 1]);
  Put(' ');
  Uint(c.day);
  Append(", ");
  Uint(uint64_t(std::max(c.year, 0)));
  Put(' ');
  Uint(c.hour % 12 == 0 ? 12 : c.hour % 12);
  Put(':');
  UintPadded(c.minute, 2);
  Append(c.hour < 12 ? " AM" : " PM");
}

void TextWriter::NewLine() {
  Ensure(1 + prefix_.size());
  out_->data()[pos_++] = '\n';
  line_start_ = pos_;
  if (!prefix_.empty()) Append(prefix_);
}

inline void TextWriter::Space() {
  if (wrap_ != 0 && pos_ - line_start_ >= wrap_) {
    NewLine();
  } else {
    out_->data()[pos_++] = ' ';  // Ensure()d by the caller
  }
}

void TextWriter::Sentence(Rng& rng, uint32_t tokens) {
  if (tokens == 0) tokens = 1;
  uint64_t r = 0;
  for (uint32_t i = 0; i < tokens; ++i) {
    r = rng.Next();
    // Bits: 0-7 token kind, 8-15 comma, 16-23 end mark, 32-63 rank.
    const uint32_t kind = uint32_t(r & 0xff);
    Ensure(Vocabulary::kPhraseSlot + 8);
    char* d = out_->data() + pos_;
    if (kind < kPhraseCut) {
      const uint32_t ph = vocab_.SamplePhrase(uint32_t(r >> 32));
      if (wrap_ == 0) {
        std::memcpy(d, vocab_.PhraseSlot(ph), Vocabulary::kPhraseSlot);
        if (i == 0) d[0] = char(d[0] - 'a' + 'A');
        pos_ += vocab_.PhraseLength(ph);
      } else {
        // Word by word, so that the phrase's inner spaces can break lines
        // (quoted text only: not the hot path).
        const char* src = vocab_.PhraseSlot(ph);
        const size_t len = vocab_.PhraseLength(ph);
        for (size_t k = 0; k < len;) {
          size_t e = k;
          while (e < len && src[e] != ' ') ++e;
          Ensure(e - k + 8);
          char* o = out_->data() + pos_;
          std::memcpy(o, src + k, e - k);
          if (i == 0 && k == 0) o[0] = char(o[0] - 'a' + 'A');
          pos_ += e - k;
          if (e < len) Space();
          k = e + 1;
        }
        Ensure(8);
      }
    } else if (kind < kSpecialCut) {
      const uint32_t w = vocab_.Sample(uint32_t(r >> 32));
      std::memcpy(d, vocab_.Slot(w), Vocabulary::kSlot);
      if (i == 0) d[0] = char(d[0] - 'a' + 'A');
      pos_ += vocab_.Length(w);
    } else if (kind & 1) {
      // A number: 0..99 (sometimes a percentage) or up to 8191.
      const uint64_t v = (r >> 32) & 0xffff;
      if (kind & 2) {
        Uint(v % 100);
        if (kind & 4) Put('%');
      } else {
        Uint(v >> 3);
      }
      Ensure(8);
    } else {
      Append(kFirstNames[(r >> 32) % std::size(kFirstNames)]);
      Ensure(8);
    }
    if (i + 1 < tokens) {
      if (((r >> 8) & 0xff) < kCommaCut) out_->data()[pos_++] = ',';
      Space();
    }
  }
  const uint32_t p = uint32_t(r >> 16) & 0xff;
  out_->data()[pos_++] = p < 18 ? '?' : (p < 22 ? '!' : '.');
}

void TextWriter::Phrase(Rng& rng, uint32_t words) {
  for (uint32_t i = 0; i < words; ++i) {
    if (i > 0) Put(' ');
    Word(rng, i == 0);
  }
}

void TextWriter::Prose(Rng& rng, size_t bytes, std::string_view prefix, size_t wrap) {
  const std::string_view saved_prefix = prefix_;
  const size_t saved_wrap = wrap_;
  prefix_ = prefix;
  wrap_ = wrap;
  line_start_ = pos_;  // the caller wrote the prefix of the first line, if any
  const size_t end = pos_ + bytes;
  Ensure(bytes + 64);
  const auto stock = vocab_.StockSentences();
  while (pos_ < end) {
    const uint64_t r = rng.Next();
    const uint32_t sentences = 1 + uint32_t(r % 4) + uint32_t((r >> 8) % 3);  // 1..6
    for (uint32_t s = 0; s < sentences && pos_ < end; ++s) {
      if (s > 0) {
        Ensure(1);
        Space();
      }
      if (((r >> (12 + 2 * s)) & 7) == 0) {
        // One sentence in eight is a stock phrase; wrapped like any other.
        const std::string_view st = stock[(r >> (40 + s)) % stock.size()];
        size_t from = 0;
        while (from < st.size()) {
          size_t sp = st.find(' ', from);
          if (sp == std::string_view::npos) sp = st.size();
          Append(st.substr(from, sp - from));
          if (sp < st.size()) {
            Ensure(1);
            Space();
          }
          from = sp + 1;
        }
        continue;
      }
      // 2..17 tokens (a token is a word or a phrase), triangular-ish around 9.
      const uint32_t tokens = 2 + uint32_t((r >> (24 + 2 * s)) & 7) + uint32_t((r >> (48 + s)) & 7) +
                              uint32_t((r >> (56 + s)) & 1);
      Sentence(rng, tokens);
    }
    if (pos_ < end) {
      NewLine();
      NewLine();
    }
  }
  prefix_ = saved_prefix;
  wrap_ = saved_wrap;
}

}  // namespace mbx::datagen
