-- Every collected address has a validation result: if not, run `directmail addresses validate` (a
-- campaign run validates by itself) before a plain `dbt build`. Runs never select this test.
with

collected as (

    select * from {{ ref('int_addresses_collected') }}

),

validated as (

    select * from {{ ref('stg_direct_mail__address_validations') }}

)

select collected.address_key
from collected
left join validated
    on collected.address_key = validated.address_key
where validated.address_key is null
