{#-
    Every distinct postal address the project knows, exactly as captured (profiles' and suppression
    entries'), with its address_key: the input of the incremental address validation.
    Incremental, append only: a key is the hash of the six raw fields, so a row never changes; a later
    build appends the keys it has not seen (a new or changed address) and keeps the others, including
    keys no profile holds any more (int_profiles_addressed, a table rebuilt each time, decides who has
    which address). A plain append works on every adapter: no merge, no delete. The keys seen are
    dropped before `distinct`, so a day's build de-duplicates only that day's new addresses.
-#}
{{ config(materialized='incremental', incremental_strategy='append') }}

with

profiles as (

    select * from {{ ref('stg_crm__profiles') }}

),

suppression_entries as (

    select * from {{ ref('stg_suppression__entries') }}

),

captured as (

    select
        address_line_1,
        address_line_2,
        postal_code,
        city,
        region,
        country_code

    from profiles

    union all

    select
        address_line_1,
        address_line_2,
        postal_code,
        city,
        region,
        country_code

    from suppression_entries
    where address_line_1 is not null

),

keyed as (

    select
        {{ address_key('address_line_1', 'address_line_2', 'postal_code', 'city', 'region', 'country_code') }}
            as address_key,
        address_line_1,
        address_line_2,
        postal_code,
        city,
        region,
        country_code

    from captured

),

new_addresses as (

    select distinct keyed.*

    from keyed
    {%- if is_incremental() %}
    where
        not exists (
            select 1 as known
            from {{ this }} as collected
            where collected.address_key = keyed.address_key
        )
    {%- endif %}

)

select * from new_addresses
