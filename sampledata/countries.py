"""Per-country reference lists that give the generated CRM each country's real address shape.

Localities are real (postal code, city, region) triples so that the generated addresses validate against
each country's postal rules; streets and names are common ones. `line_1` is a format with `{n}` for the
house number and `{street}` for the street; `line_2` values are optional second lines.
"""

COUNTRIES: dict[str, dict] = {
    "FR": {
        "weight": 25,
        "languages": ["fr"],
        "currency": "EUR",
        "first_names": ["Élodie", "Jérôme", "Françoise", "Théo", "Chloé", "Hélène", "François", "Zoé", "Gaëlle", "Loïc"],
        "last_names": ["Martin", "Bernard", "Lefèvre", "Dubois", "Moreau", "Girard", "Chevalier", "Bézier", "Rousseau", "Lemaître"],
        "streets": ["rue de la République", "avenue Jean-Jaurès", "boulevard Saint-Michel", "rue de l'Église", "place du Général-de-Gaulle", "chemin des Prés"],
        "line_1": "{n} {street}",
        "line_2": ["Bâtiment B", "Résidence les Tilleuls", "Appartement 12", "Escalier C, 3e étage"],
        "localities": [
            ("75011", "Paris", ""), ("69003", "Lyon", ""), ("13006", "Marseille", ""),
            ("31000", "Toulouse", ""), ("33000", "Bordeaux", ""), ("59800", "Lille", ""),
            ("67000", "Strasbourg", ""), ("44000", "Nantes", ""),
        ],
    },
    "DE": {
        "weight": 20,
        "languages": ["de"],
        "currency": "EUR",
        "first_names": ["Jürgen", "Günther", "Käthe", "Lukas", "Sophie", "Jörg", "Anja", "Björn", "Grete", "Maximilian"],
        "last_names": ["Müller", "Schröder", "Weiß", "Schäfer", "Groß", "Köhler", "Schmidt", "Fischer", "Bräuer", "Meyer"],
        "streets": ["Hauptstraße", "Schloßallee", "Bahnhofstraße", "Gartenweg", "Große Straße", "Am Königsplatz"],
        "line_1": "{street} {n}",
        "line_2": ["Hinterhaus", "c/o Familie Weiß", "2. OG links"],
        "localities": [
            ("10115", "Berlin", ""), ("80331", "München", ""), ("20095", "Hamburg", ""),
            ("50667", "Köln", ""), ("60311", "Frankfurt am Main", ""), ("70173", "Stuttgart", ""),
            ("04109", "Leipzig", ""), ("01067", "Dresden", ""),
        ],
    },
    "ES": {
        "weight": 12,
        "languages": ["es"],
        "currency": "EUR",
        "first_names": ["José", "María", "Íñigo", "Lucía", "Begoña", "Andrés", "Inés", "Raúl", "Ángela", "Óscar"],
        "last_names": ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Muñoz", "Jiménez", "Núñez"],
        "streets": ["Calle Mayor", "Calle de Alcalá", "Avenida de la Constitución", "Paseo de Gracia", "Calle Real", "Plaza de España"],
        "line_1": "{street}, {n}",
        "line_2": ["3º B", "Escalera 2, 1º A", "Bajo izquierda", "5º D"],
        "localities": [
            ("28013", "Madrid", "Madrid"), ("08007", "Barcelona", "Barcelona"), ("46002", "Valencia", "Valencia"),
            ("41004", "Sevilla", "Sevilla"), ("48001", "Bilbao", "Bizkaia"), ("29015", "Málaga", "Málaga"),
        ],
    },
    "PT": {
        "weight": 8,
        "languages": ["pt"],
        "currency": "EUR",
        "first_names": ["João", "Conceição", "Gonçalo", "Inês", "Tomás", "Leonor", "Sebastião", "Margarida", "André", "Beatriz"],
        "last_names": ["Silva", "Gonçalves", "Magalhães", "Araújo", "Simões", "Conceição", "Ferreira", "Gomes", "Lopes", "Brandão"],
        "streets": ["Rua Augusta", "Avenida da Liberdade", "Rua de Santa Catarina", "Praça do Comércio", "Rua das Flores"],
        "line_1": "{street}, {n}",
        "line_2": ["2º Esq.", "1º Dto.", "R/C", "3º Frente"],
        "localities": [
            ("1100-053", "Lisboa", ""), ("4000-322", "Porto", ""), ("3000-143", "Coimbra", ""),
            ("8000-138", "Faro", ""), ("4700-306", "Braga", ""),
        ],
    },
    "GB": {
        "weight": 15,
        "languages": ["en"],
        "currency": "GBP",
        "first_names": ["Oliver", "Amelia", "Harry", "Isla", "George", "Siobhan", "Rhys", "Charlotte", "Alfie", "Niamh"],
        "last_names": ["Smith", "Jones", "Taylor", "O'Brien", "Williams", "Brown", "Davies", "Evans", "Wilson", "MacDonald"],
        "streets": ["High Street", "Station Road", "Church Lane", "Victoria Road", "Manor Close", "Park Avenue"],
        "line_1": "{n} {street}",
        "line_2": ["Flat 3", "Rose Cottage", "Unit 7, Riverside Court"],
        "localities": [
            ("SW1A 2AA", "London", ""), ("M1 1AE", "Manchester", ""), ("B1 1BB", "Birmingham", ""),
            ("EH1 1YZ", "Edinburgh", ""), ("CF10 1EP", "Cardiff", ""), ("LS1 4DY", "Leeds", ""),
        ],
    },
    "US": {
        "weight": 15,
        "languages": ["en", "en", "en", "es"],
        "currency": "USD",
        "first_names": ["James", "Mary", "Michael", "Jennifer", "Carlos", "Ashley", "Robert", "Emily", "Daniel", "Sofía"],
        "last_names": ["Johnson", "Williams", "Miller", "Davis", "Rodriguez", "Anderson", "Thomas", "Jackson", "White", "Harris"],
        "streets": ["Main St", "Oak Ave", "Maple Dr", "Washington Blvd", "Sunset Blvd", "Elm St"],
        "line_1": "{n} {street}",
        "line_2": ["Apt 4B", "Suite 200", "Unit 12"],
        "localities": [
            ("10001", "New York", "NY"), ("94103", "San Francisco", "CA"), ("60601", "Chicago", "IL"),
            ("73301", "Austin", "TX"), ("98101", "Seattle", "WA"), ("02108", "Boston", "MA"),
            ("33131", "Miami", "FL"),
        ],
    },
    "JP": {
        "weight": 5,
        "languages": ["ja"],
        "currency": "JPY",
        "first_names": ["太郎", "花子", "健一", "さくら", "翔太", "美咲", "大輔", "陽菜", "拓也", "結衣"],
        "last_names": ["佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "山本", "中村", "小林", "加藤"],
        "streets": ["神南1丁目", "丸の内2丁目", "梅田3丁目", "栄4丁目", "中央1丁目"],
        "line_1": "{street}{n}-{n2}",
        "line_2": ["グランドメゾン101号室", "サンハイツ203号", "第二ビル5階"],
        "localities": [
            ("150-0041", "渋谷区", "東京都"), ("100-0005", "千代田区", "東京都"), ("530-0001", "大阪市北区", "大阪府"),
            ("460-0008", "名古屋市中区", "愛知県"), ("980-0021", "仙台市青葉区", "宮城県"),
        ],
    },
}
