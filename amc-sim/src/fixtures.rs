//! Fixtures behind the directory routes: AMC accounts (`GET /amc/accounts`), instances
//! (`GET /amc/instances`) and data sources (`GET …/dataSources`). Accounts and instances are
//! configurable (`AMP_SIM_ACCOUNTS`, `AMP_SIM_INSTANCES`, the admin API); data sources are a
//! fixed, abbreviated sample.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// One entry of `GET /amc/accounts` (`amcAccounts[]`, AMC guide "AMC account management").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcAccount {
    /// The entity id clients send as `Amazon-Advertising-API-AdvertiserId`.
    pub account_id: String,
    #[serde(default)]
    pub account_name: String,
    #[serde(default = "default_marketplace")]
    pub marketplace_id: String,
}

/// One entry of `GET /amc/instances` (`instances[]`, AMC guide "Instance management").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcInstance {
    pub instance_id: String,
    #[serde(default)]
    pub instance_name: String,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    #[serde(default = "default_creation_status")]
    pub creation_status: String,
    /// Every other field, answered as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_marketplace() -> String {
    "ATVPDKIKX0DER".to_owned()
}

fn default_instance_type() -> String {
    "STANDARD".to_owned()
}

fn default_creation_status() -> String {
    "COMPLETED".to_owned()
}

/// The default accounts: the sample account of the AMC guide.
pub fn default_accounts() -> Vec<AmcAccount> {
    vec![AmcAccount {
        account_id: "ENTITY1AA1AA11AAA1".to_owned(),
        account_name: "AMC Demo Account".to_owned(),
        marketplace_id: default_marketplace(),
    }]
}

/// The default instances: the sample instance of the official notebook, with the fields of
/// the guide's sample response.
pub fn default_instances() -> Vec<AmcInstance> {
    let extra = json!({
        "customerCanonicalName": "Advertiser-A",
        "creationDatetime": "2024-01-01T00:00:00Z",
        "s3BucketName": "amc-amc-instance01-sim",
        "awsAccountId": "000000000000",
        "entities": ["NA"],
        "dataUploadAwsAccountId": "000000000000",
        "apiEndpoint": null,
        "acrCollaboration": null,
        "optionalDatasets": [],
        "advertiserTypes": ["DISPLAY"],
    });
    vec![AmcInstance {
        instance_id: "amc-instance01".to_owned(),
        instance_name: "amc-instance01".to_owned(),
        instance_type: default_instance_type(),
        creation_status: default_creation_status(),
        extra: extra.as_object().cloned().unwrap_or_default(),
    }]
}

/// Parses a fixture list: a JSON list, or an object holding it under `key`.
pub fn parse_list<T: serde::de::DeserializeOwned>(
    text: &[u8],
    key: &str,
) -> Result<Vec<T>, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = match v {
        Value::Array(_) => v,
        Value::Object(mut obj) => obj
            .remove(key)
            .ok_or_else(|| format!("expected a list, or an object with {key:?}"))?,
        _ => return Err(format!("expected a list, or an object with {key:?}")),
    };
    serde_json::from_value(list).map_err(|e| e.to_string())
}

/// The data sources every instance lists (`dataSourceId`, description and a few columns
/// from the AMC data source guides).
pub fn data_sources() -> Vec<Value> {
    let col = |name: &str, data_type: &str, column_type: &str, threshold: &str| {
        json!({"name": name, "dataType": data_type, "columnType": column_type,
               "aggregationThreshold": threshold})
    };
    let source = |id: &str, description: &str, columns: Vec<Value>| {
        json!({"dataSourceId": id, "name": id, "description": description,
               "columns": columns})
    };
    vec![
        source(
            "amazon_attributed_events_by_conversion_time",
            "Traffic and conversion event pairs, by the time of the conversion.",
            vec![
                col("campaign", "STRING", "DIMENSION", "LOW"),
                col("purchases", "LONG", "METRIC", "NONE"),
                col("total_purchases", "LONG", "METRIC", "NONE"),
            ],
        ),
        source(
            "amazon_attributed_events_by_traffic_time",
            "Traffic and conversion event pairs, by the time of the traffic event.",
            vec![
                col("campaign", "STRING", "DIMENSION", "LOW"),
                col("total_purchases", "LONG", "METRIC", "NONE"),
            ],
        ),
        source(
            "dsp_impressions",
            "Every impression delivered through an Amazon DSP campaign.",
            vec![
                col("advertiser", "STRING", "DIMENSION", "LOW"),
                col("campaign", "STRING", "DIMENSION", "LOW"),
                col("campaign_id", "LONG", "DIMENSION", "LOW"),
                col("audience_fee", "LONG", "METRIC", "NONE"),
                col("bid_price", "LONG", "METRIC", "MEDIUM"),
            ],
        ),
        source(
            "sponsored_ads_traffic",
            "Impressions and clicks of sponsored ads programs.",
            vec![
                col("campaign", "STRING", "DIMENSION", "LOW"),
                col("impressions", "LONG", "METRIC", "NONE"),
                col("clicks", "LONG", "METRIC", "NONE"),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_bare_or_wrapped_with_defaults() {
        let a: Vec<AmcAccount> =
            parse_list(br#"[{"accountId":"ENTITYX"}]"#, "amcAccounts").expect("bare");
        assert_eq!(a[0].marketplace_id, "ATVPDKIKX0DER");
        let i: Vec<AmcInstance> = parse_list(
            br#"{"instances":[{"instanceId":"amcx","s3BucketName":"b"}]}"#,
            "instances",
        )
        .expect("wrapped");
        assert_eq!(i[0].creation_status, "COMPLETED");
        let v = serde_json::to_value(&i[0]).expect("json");
        assert_eq!(v["s3BucketName"], "b");
        assert_eq!(v["instanceType"], "STANDARD");
        assert!(parse_list::<AmcAccount>(br#"[{"name":"x"}]"#, "amcAccounts").is_err());
        assert!(parse_list::<AmcAccount>(b"3", "amcAccounts").is_err());
    }
}
