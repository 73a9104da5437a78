"""Result tables (tf_nvm.core.tables): Markdown cells as users read them."""

import pandas as pd

from tf_nvm.core.tables import to_markdown, write_table


def test_markdown_cells_integers_decimals_and_missing_values(tmp_path):
    table = pd.DataFrame({"trial": ["00", "01"], "filters_1": [48, None], "dropout": [0.2, float("nan")],
                          "ok": [True, False], "note": ["a|b", None]})
    table["filters_1"] = table["filters_1"].astype("Int64")  # an integer column with a missing value
    assert to_markdown(table, 3) == ("| trial | filters_1 | dropout | ok | note |\n| --- | --- | --- | --- | --- |\n"
                                     "| 00 | 48 | 0.200 | True | a\\|b |\n| 01 |  |  | False |  |\n")
    csv_path, md_path = write_table(table, str(tmp_path / "t"))
    assert pd.read_csv(csv_path)["filters_1"].tolist()[0] == 48 and open(md_path).read() == to_markdown(table)
